#!/usr/bin/env bash
# The inpainting tables (docs/inpainting.md): trains the CPU-sized models for the 8x8 and 12x12 center masks,
# completes the 500 evaluation digits (seed 42) with every method, scores them, prints the table.
# Needs checkpoints/demo/final.pt (make demo) for training-free inpainting. Then both 8x8 models again
# at 4 and 8 times the budget (6,000 and 12,000 steps), also checked on other digits. About 6 hours on 2 CPU cores.
#   bash scripts/inpaint_experiments.sh [PYTHON]
set -euo pipefail
PY=${1:-python}
complete_and_score() { # NAME CHECKPOINT MASK_SIZE [--seed SEED] [sample.py options]
  local name=$1 ckpt=$2 k=$3; shift 3
  $PY sample.py --checkpoint "$ckpt" --student_name "$name" --task inpaint --mask center --mask_size "$k" "$@"
  local seed=42; [ "${1:-}" = --seed ] && seed=$2
  $PY evaluate.py --student_name "$name" --task inpaint --seed $seed --no-progress
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
longer_8x8() { # STEPS: both 8x8 models trained for STEPS steps; the regression against the diffusion
  # model's best estimate, on the table's 500 digits (seed 42) and on 500 other test digits (seed 7)
  local t=$(($1 / 1000))k
  $PY train.py --config configs/regression.yaml --student_name reg8_$t task.mask_size=8 train.steps=$1
  $PY train.py --config configs/inpaint_tiny.yaml --student_name cond8_$t task.mask_size=8 train.steps=$1
  local tw=(--steps 50 --eta 1 sample.dc_repeats=1 sample.mean_at=0.5)
  complete_and_score reg8_${t}_x1 checkpoints/reg8_$t/final.pt 8
  complete_and_score cond8_${t}_tw32 checkpoints/cond8_$t/final.pt 8 --mean_of 32 "${tw[@]}"
  complete_and_score reg8_${t}_s7 checkpoints/reg8_$t/final.pt 8 --seed 7
  complete_and_score cond8_${t}_tw32_s7 checkpoints/cond8_$t/final.pt 8 --seed 7 --mean_of 32 "${tw[@]}"
  complete_and_score cond8_${t}_tw16 checkpoints/cond8_$t/final.pt 8 --mean_of 16 "${tw[@]}"
  complete_and_score cond8_${t}_x1 checkpoints/cond8_$t/final.pt 8
  complete_and_score cond8_${t}_mean8 checkpoints/cond8_$t/final.pt 8 --mean_of 8
  $PY scripts/inpaint_table.py --against reg8_${t}_x1 reg8_${t}_x1 cond8_${t}_tw32 cond8_${t}_tw16 cond8_${t}_mean8 cond8_${t}_x1
  $PY scripts/inpaint_table.py --against reg8_${t}_s7 cond8_${t}_tw32_s7
}
$PY scripts/inpaint_table.py
longer_8x8 6000   # where eta 1, 50 steps and mean_at 0.5 were picked, on the first 100 of the seed-42 digits
longer_8x8 12000  # the same settings, unchanged
# the 12,000-step diffusion model against the regression's best run (6,000 steps; it overfits at 12,000)
$PY scripts/inpaint_table.py --against reg8_6k_x1 cond8_12k_tw32 cond8_12k_mean8
$PY scripts/inpaint_table.py --against reg8_6k_s7 cond8_12k_tw32_s7
