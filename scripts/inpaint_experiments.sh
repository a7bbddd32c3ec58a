#!/usr/bin/env bash
# The README's inpainting table: trains the CPU-sized models for the 8x8 and 12x12 center masks,
# completes the 500 evaluation digits with every method, scores them, and prints the table.
# Needs checkpoints/demo/final.pt (make demo) for training-free inpainting. About 1 hour on 2 CPU cores.
#   bash scripts/inpaint_experiments.sh [PYTHON]
set -euo pipefail
PY=${1:-python}
for k in 8 12; do
  $PY train.py --config configs/regression.yaml --student_name reg$k task.mask_size=$k
  $PY train.py --config configs/inpaint_tiny.yaml --student_name cond$k task.mask_size=$k
  runs=()
  sample() { # NAME CHECKPOINT ARGS...
    local name=$1 ckpt=$2; shift 2
    $PY sample.py --checkpoint "$ckpt" --student_name "$name" --task inpaint --mask center --mask_size $k "$@"
    $PY evaluate.py --student_name "$name" --task inpaint --no-progress
    runs+=("$name")
  }
  sample reg${k}_x1 checkpoints/reg$k/final.pt
  sample cond${k}_x1 checkpoints/cond$k/final.pt
  sample cond${k}_mean8 checkpoints/cond$k/final.pt --mean_of 8
  sample cond${k}_mean32 checkpoints/cond$k/final.pt --mean_of 32
  sample demo${k}_dc checkpoints/demo/final.pt --steps 20 sample.dc_repeats=1
  sample demo${k}_repaint checkpoints/demo/final.pt --steps 20 sample.dc_repeats=5 sample.eta=1.0
  sample demo${k}_repaint_mean8 checkpoints/demo/final.pt --steps 20 sample.dc_repeats=5 sample.eta=1.0 --mean_of 8
done
$PY scripts/inpaint_table.py
