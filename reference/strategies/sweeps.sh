#!/usr/bin/env bash
# The sweeps behind reference/strategies/: every protection on the same 10 evaluation chips (0-9),
# the same 1,000 CIFAR-10 test images and the same BERs as reference/vgg11/sweep, each with its
# `--on calibration` twin (the same chips on 1,000 of the base model's held-out validation images)
# for the per-chip-voltage strategies. fp32, one torch thread each; every sweep resumes when rerun.
#
#   bash reference/strategies/sweeps.sh NAME...   # run (or resume) these sweeps into runs/sweep-NAME
#   bash reference/strategies/sweeps.sh keep      # copy the finished ones to reference/strategies/sweeps/
#
# NAME: vgg11-calibration (the reference VGG11 alone and behind the shipped UNetS, validation
# images; its test twin is reference/vgg11/sweep), vgg11-robust[-calibration] (the reference VGG11,
# robust storage), gn-clip[-calibration] and gn-clip-robust[-calibration] (the GroupNorm VGG11 trained
# with weight clipping 0.1, symmetric and robust storage; gn-clip also behind the UNetS trained
# for it, gn-clip-unets-s0, once that run exists), gn-clip-randbet[-calibration] (the clipped model
# fine-tuned with random bit-error training).
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} NUMBA_NUM_THREADS=${NUMBA_NUM_THREADS:-1}
NF=${NF:-.venv/bin/neuralfuse}
REFERENCE=reference/vgg11-cifar10.pt
GN_CLIP=${GN_CLIP:-reference/strategies/vgg11-gn-clip.pt}
GN_CLIP_NF=reference/strategies/gn-clip-unets-s0
BERS=$(sed -n '/^SWEEP_BERS=/,/[0-9]$/p' reference/vgg11/generators.sh | tr -d '\\\n' | sed 's/SWEEP_BERS=//')
COMMON=(--chips 10 --samples 1000 --dataset cifar10 --data-root .cache/cifar10-jpeg --no-progress --bers "$BERS")

run() {  # NAME
  local name=$1 on=() args
  [[ $name == *-calibration ]] && on=(--on calibration)
  case "${name%-calibration}" in
    vgg11) args=(--base "$REFERENCE" --run reference/vgg11/unets-s0-cosine) ;;
    vgg11-robust) args=(--base "$REFERENCE" --storage robust) ;;
    gn-clip) args=(--base "$GN_CLIP"); [[ -d $GN_CLIP_NF ]] && args+=(--run "$GN_CLIP_NF") ;;
    gn-clip-randbet) args=(--base reference/strategies/vgg11-gn-clip-randbet.pt) ;;
    gn-clip-robust) args=(--base "$GN_CLIP" --storage robust) ;;
    *) echo "unknown sweep '$name' (see the header of $0)" >&2; exit 2 ;;
  esac
  [[ $name == vgg11 ]] && { echo "vgg11's test sweep is reference/vgg11/sweep (generators.sh sweep)" >&2; exit 2; }
  "$NF" sweep "${args[@]}" "${on[@]}" "${COMMON[@]}" -o "runs/sweep-$name"
}

keep() {  # copy every finished sweep here (a finished sweep has its sweep.csv)
  for dir in runs/sweep-*/; do
    dir=${dir%/}
    [[ -f $dir/sweep.csv ]] || { echo "skipping $dir: not finished"; continue; }
    rm -rf "reference/strategies/sweeps/${dir#runs/sweep-}"
    mkdir -p reference/strategies/sweeps
    cp -r "$dir" "reference/strategies/sweeps/${dir#runs/sweep-}"
  done
}

case "${1:-}" in
  keep) keep ;;
  "") sed -n '2,14p' "$0"; exit 2 ;;
  *) for name in "$@"; do run "$name"; done ;;
esac
