#!/usr/bin/env bash
# The README's inpainting table: trains the CPU-sized models for the 8x8 and 12x12 center masks,
# completes the 500 evaluation digits (seed 42) with every method, scores them, prints the table.
# Needs checkpoints/demo/final.pt (make demo) for training-free inpainting. About 1 hour on 2 CPU cores.
#   bash scripts/inpaint_experiments.sh [PYTHON]
set -euo pipefail
PY=${1:-python}
complete_and_score() { # NAME CHECKPOINT MASK_SIZE [sample.py options]
  local name=$1 ckpt=$2 k=$3; shift 3
  $PY sample.py --checkpoint "$ckpt" --student_name "$name" --task inpaint --mask center --mask_size "$k" "$@"
  $PY evaluate.py --student_name "$name" --task inpaint --no-progress
}
for k in 8 12; do
  $PY train.py --config configs/regression.yaml --student_name reg$k task.mask_size=$k
  $PY train.py --config configs/completion_mnist.yaml --student_name gated$k task.mask_size=$k
  $PY train.py --config configs/inpaint_tiny.yaml --student_name cond$k task.mask_size=$k
  complete_and_score reg${k}_x1 checkpoints/reg$k/final.pt $k
  complete_and_score gated${k}_x1 checkpoints/gated$k/final.pt $k
  complete_and_score cond${k}_x1 checkpoints/cond$k/final.pt $k
  complete_and_score cond${k}_mean8 checkpoints/cond$k/final.pt $k --mean_of 8
  complete_and_score demo${k}_dc checkpoints/demo/final.pt $k --steps 20
  complete_and_score demo${k}_repaint checkpoints/demo/final.pt $k --steps 20 sample.dc_repeats=5 sample.eta=1.0
done
$PY scripts/inpaint_table.py
