#!/usr/bin/env bash
# bf16 beside fp32 in EOPM training: the same short run (UNetS for the reference VGG11 at 5% BER,
# 2 epochs of 75 steps, the recipe of reference/vgg11 otherwise) at fp32 and bf16 with seed 0, and at
# fp32 with seed 1 for the seed spread; validation RP after each epoch (500 held-out images, 3
# validation chips). Resumable; one torch thread.
#
#   bash reference/precision/twins.sh            # trains into runs/precision-*, copies the records here
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} NUMBA_NUM_THREADS=${NUMBA_NUM_THREADS:-1}
NF=${NF:-.venv/bin/neuralfuse}
for run in fp32-s0 bf16-s0 fp32-s1; do
  precision=${run%-s*} seed=${run##*-s}
  /usr/bin/time -f "$run: %e s" "$NF" train --base reference/vgg11-cifar10.pt --generator UNetS --ber 0.05 \
    --chips-per-step 5 --batch-size 32 --lambda 5 --lr 0.001 --max-steps-per-epoch 75 --epochs 2 \
    --checkpoint-every 25 --val-images 500 --val-chips 3 --seed "$seed" --precision "$precision" \
    --dataset cifar10 --data-root .cache/cifar10-jpeg --no-progress -o "runs/precision-$run"
  mkdir -p "reference/precision/$run"
  cp "runs/precision-$run"/{config.json,metrics.csv} "reference/precision/$run/"
done
