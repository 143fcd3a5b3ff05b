#!/usr/bin/env bash
# The EOPM runs of reference/vgg11 and what is reported from them, resumable at every step.
#
#   bash reference/vgg11/generators.sh train NAME...          # train (or resume) runs/vgg11-NAME
#   bash reference/vgg11/generators.sh finetune NAME [EPOCHS [LAMBDA]]
#       # runs/vgg11-NAME-cosine (or -cosine-lLAMBDA when LAMBDA is not 5): NAME's kept generator,
#       # EPOCHS (4) more epochs with the lr decayed from 1e-3 to 0 on a cosine
#   bash reference/vgg11/generators.sh continue NAME [OPTION...] # runs/vgg11-NAME-long: NAME's kept
#       # generator trained on with the same recipe (constant lr) until validation PA has not improved
#       # for 3 epochs; OPTIONs go to `neuralfuse train` (e.g. --precision bf16)
#   bash reference/vgg11/generators.sh report                 # copy here, test-set evaluation, seed table
#   bash reference/vgg11/generators.sh sweep [DIR [OPTION...]] # sweep the base model and every reported run
#
# NAME is GENERATOR-sSEED in lower case (unets-s0, unets-s1, convs-s0, convs-s1, unetl-s0). Two
# lanes side by side on 2 cores, one torch thread each:
#
#   nohup bash reference/vgg11/generators.sh train unets-s1 unetl-s0 > runs/lane-a.log 2>&1 &
#   nohup bash reference/vgg11/generators.sh train convs-s0 convs-s1 > runs/lane-b.log 2>&1 &
#
# Every run uses one recipe (the one unets-s0 used): 5% BER, N = 5, lambda 5, Adam 1e-3
# constant, batch 32, "epochs" of 469 steps, validated on 1,000 held-out images and 3
# validation chips; generator.pt is the epoch with the highest validation PA. A run that
# stopped resumes from its last checkpoint; a finished one is left as it is. `report` copies each
# finished run's record to reference/vgg11/NAME, evaluates it once on the test set and evaluation
# chips 0-9, and tables all of them over seeds (generators.csv).
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} NUMBA_NUM_THREADS=${NUMBA_NUM_THREADS:-1}
NF=${NF:-.venv/bin/neuralfuse}
BASE=reference/vgg11-cifar10.pt
DATA=(--dataset cifar10 --data-root .cache/cifar10-jpeg)
EPOCHS=${EPOCHS:-12}
EVALUATION=evaluation-ber0.05-8bit-stuck-at.json
# The sweep's BERs: those of the 17 voltages it was first measured at, 0.70 ... 1.00 Vmin of the
# two-point calibration (now 14nm-512x64-two-point); sweep_to_bers.py carried it over by BER.
SWEEP_BERS=0.0000010000,0.0000267737,0.0004409329,0.0011821295,0.0029376983,0.0045022101,0.0067723448,\
0.0100000000,0.0144966111,0.0206348845,0.0288453888,0.0396064766,0.0499499834,0.0708170865,\
0.0922603852,0.1488391595,0.3190531162

generator_of() {  # unets-s1 -> UNetS, convs-s0 -> ConvS, unetl-s0 -> UNetL, deconvl-s0 -> DeConvL
  case "${1%-s*}" in
    unets) echo UNetS ;; unetl) echo UNetL ;; convs) echo ConvS ;; convl) echo ConvL ;;
    deconvs) echo DeConvS ;; deconvl) echo DeConvL ;;
    *) echo "unknown generator in run name '$1' (unets|unetl|convs|convl|deconvs|deconvl)-sSEED" >&2; exit 2 ;;
  esac
}

train() {  # NAME [more train options]
  local name=$1 seed=${1##*-s}; shift
  "$NF" train --base "$BASE" --generator "$(generator_of "$name")" --ber 0.05 --chips-per-step 5 \
    --batch-size 32 --lambda 5 --lr 0.001 --max-steps-per-epoch 469 --epochs "$EPOCHS" \
    --checkpoint-every 100 --val-images 1000 --val-chips 3 --seed "${seed%%-*}" "${DATA[@]}" \
    --no-progress "$@" -o "runs/vgg11-$name"
}

report() {  # copy each finished run's record here, evaluate it once, table the seeds
  local name
  for run in runs/vgg11-*-s[0-9]*/; do
    run=${run%/} name=${run#runs/vgg11-}
    [[ -f $run/generator.pt ]] || { echo "skipping $run: not finished"; continue; }
    mkdir -p "reference/vgg11/$name"
    if ! cmp -s "$run/generator.pt" "reference/vgg11/$name/generator.pt"; then
      rm -f "reference/vgg11/$name/$EVALUATION"   # a new generator: evaluate it again
      cp "$run"/{config.json,metrics.csv,learning_curve.png,generator.pt} "reference/vgg11/$name/"
    fi
  done
  for run in reference/vgg11/*-s[0-9]*/; do
    [[ -f $run/$EVALUATION ]] || "$NF" evaluate --base "$BASE" --run "${run%/}" --ber 0.05 \
      --chips 10 "${DATA[@]}" --no-progress
  done
  "$NF" compare reference/vgg11/*-s[0-9]*/ --over-seeds --csv reference/vgg11/generators.csv
}

sweep() {  # [DIR [sweep options]]: the base model alone and behind every reported run, measuring
           # only what DIR (default: reference/vgg11/sweep) lacks
  local dir=${1:-reference/vgg11/sweep} runs=()
  shift || true
  for run in reference/vgg11/*-s[0-9]*/; do runs+=(--run "${run%/}"); done
  "$NF" sweep --base "$BASE" "${runs[@]}" --chips 10 --samples 1000 "${DATA[@]}" --no-progress \
    --bers "$SWEEP_BERS" -o "$dir" "$@"
}

case "${1:-}" in
  train) shift; for name in "$@"; do train "$name"; done ;;
  finetune) lambda=${4:-5}; suffix=-cosine; [[ $lambda == 5 ]] || suffix+=-l$lambda
    EPOCHS=${3:-4} train "${2:?give a finished run}$suffix" --init-run "runs/vgg11-$2" \
      --lr-schedule cosine --lambda "$lambda" ;;
  continue) name=${2:?give a reported run}; shift 2
    EPOCHS=${EPOCHS:-40} train "$name-long" --init-run "reference/vgg11/$name" --patience 3 "$@" ;;
  report) report ;;
  sweep) shift; sweep "$@" ;;
  *) sed -n '2,10p' "$0"; exit 2 ;;
esac
