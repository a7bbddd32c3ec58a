#!/usr/bin/env bash
# The README's inpainting table: trains the CPU-sized models for the 8x8 and 12x12 center masks,
# completes the 500 evaluation digits (seed 42) with every method, scores them, prints the table.
# Needs checkpoints/demo/final.pt (make demo) for training-free inpainting. Then both 8x8 models again
# at four times the budget (6,000 steps), checked on other digits. About 3 hours on 2 CPU cores.
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
$PY train.py --config configs/regression.yaml --student_name reg8_6k task.mask_size=8 train.steps=6000
$PY train.py --config configs/inpaint_tiny.yaml --student_name cond8_6k task.mask_size=8 train.steps=6000
complete_and_score reg8_6k_x1 checkpoints/reg8_6k/final.pt 8
complete_and_score cond8_6k_x1 checkpoints/cond8_6k/final.pt 8
complete_and_score cond8_6k_mean8 checkpoints/cond8_6k/final.pt 8 --mean_of 8
complete_and_score cond8_6k_tw16 checkpoints/cond8_6k/final.pt 8 --mean_of 16 --steps 50 --eta 1 \
  sample.dc_repeats=1 sample.mean_at=0.5
complete_and_score cond8_6k_tw32 checkpoints/cond8_6k/final.pt 8 --mean_of 32 --steps 50 --eta 1 \
  sample.dc_repeats=1 sample.mean_at=0.5
# the regression and the best diffusion entry on 500 other test digits (the settings were picked on these)
$PY sample.py --checkpoint checkpoints/reg8_6k/final.pt --student_name reg8_6k_s7 --task inpaint --mask_size 8 --seed 7
$PY evaluate.py --student_name reg8_6k_s7 --task inpaint --seed 7 --no-progress
$PY sample.py --checkpoint checkpoints/cond8_6k/final.pt --student_name cond8_6k_tw32_s7 --task inpaint --mask_size 8 \
  --seed 7 --mean_of 32 --steps 50 --eta 1 sample.dc_repeats=1 sample.mean_at=0.5
$PY evaluate.py --student_name cond8_6k_tw32_s7 --task inpaint --seed 7 --no-progress
$PY scripts/inpaint_table.py
$PY scripts/inpaint_table.py --against reg8_6k_x1 reg8_6k_x1 cond8_6k_tw32 cond8_6k_tw16 cond8_6k_mean8 cond8_6k_x1
$PY scripts/inpaint_table.py --against reg8_6k_s7 cond8_6k_tw32_s7
