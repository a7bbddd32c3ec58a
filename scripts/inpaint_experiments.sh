#!/usr/bin/env bash
# Training-free inpainting against trained inpainting (docs/inpainting.md, "Inpainting without training for
# it"). For the 12x12 and 8x8 center masks: trains the regression baseline (configs/regression.yaml) and the
# conditional inpainting diffusion (configs/inpaint_tiny.yaml); completes the same 500 test digits (seed 42)
# with them, with the course's regression if checkpoints/reg8_6k exists (scripts/course_experiments.sh), and,
# training-free, with a generation checkpoint (DDIM + data consistency, alone and averaged over 8 draws, and
# RePaint resampling); scores every entry and prints one table per mask, each entry paired digit by digit
# with the regression. GEN is the generation checkpoint (default: configs/default.yaml trained as `default`
# if checkpoints/default/final.pt is missing, about an hour). Each job runs on one thread, two at a time;
# about 1 h 20 min on 2 CPU cores besides GEN.
#   bash scripts/inpaint_experiments.sh [PYTHON] [GEN]
set -euo pipefail
PY=${1:-python}
GEN=${2:-checkpoints/default/final.pt}
export OMP_NUM_THREADS=1
[ -f "$GEN" ] || $PY train.py --config configs/default.yaml --student_name default --no-progress
complete_and_score() { # NAME CHECKPOINT MASK_SIZE [sample.py options]
  local name=$1 ckpt=$2 k=$3; shift 3
  $PY sample.py --checkpoint "$ckpt" --student_name "$name" --task inpaint --mask center --mask_size "$k" "$@"
  $PY evaluate.py --student_name "$name" --task inpaint --no-progress
}
trained() { # MASK_SIZE: train and score the two models trained for the mask
  local k=$1
  $PY train.py --config configs/regression.yaml --student_name reg$k task.mask_size=$k --no-progress
  $PY train.py --config configs/inpaint_tiny.yaml --student_name cond$k task.mask_size=$k --no-progress
  complete_and_score reg${k}_x1 checkpoints/reg$k/final.pt $k
  complete_and_score cond${k}_x1 checkpoints/cond$k/final.pt $k
  complete_and_score cond${k}_mean8 checkpoints/cond$k/final.pt $k --mean_of 8
}
training_free() { # MASK_SIZE: the generation checkpoint, 20 DDIM steps
  local k=$1
  complete_and_score gen${k}_dc "$GEN" $k --steps 20
  complete_and_score gen${k}_dc_mean8 "$GEN" $k --steps 20 --mean_of 8
  complete_and_score gen${k}_repaint "$GEN" $k --steps 20 inpaint.dc_repeats=5 sample.eta=1.0
}
trained 12 & trained 8 & wait
training_free 12 & training_free 8 & wait
course=()  # the course's regression (scripts/course_experiments.sh), when it has been trained
if [ -f checkpoints/reg8_6k/best.pt ]; then
  complete_and_score reg8_6k_x1 checkpoints/reg8_6k/best.pt 8
  course=(reg8_6k_x1)
fi
$PY scripts/inpaint_table.py --against reg12_x1 reg12_x1 cond12_x1 cond12_mean8 gen12_dc gen12_dc_mean8 gen12_repaint
$PY scripts/inpaint_table.py --against reg8_x1 reg8_x1 "${course[@]}" cond8_x1 cond8_mean8 gen8_dc gen8_dc_mean8 gen8_repaint
