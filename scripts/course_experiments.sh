#!/usr/bin/env bash
# The course task table (docs/inpainting.md, "The course task"), from scratch: every model holds out the
# same 5,000 training digits (data.val_size=5000) and keeps best.pt by their hole MSE; the regularisation
# and the ensemble weights are chosen on those digits; the 10,000 test digits are completed and scored
# once, at the end. Each run trains on one thread, two at a time (about 1.5 hours per UNet run and 15 minutes
# per ConvMLP run on this 2-core CPU, so about 3 hours in all).
#   bash scripts/course_experiments.sh [PYTHON]
set -euo pipefail
PY=${1:-python}
export OMP_NUM_THREADS=1
fit() { # CONFIG NAME [overrides]
  local c=$1 n=$2; shift 2
  [ -f checkpoints/$n/final.pt ] || $PY train.py --config "$c" --student_name "$n" --no-progress "$@" > "logs/$n.log" 2>&1
}
unet() { fit configs/course.yaml "$@"; }             # configs/regression.yaml's UNet on the course mask
convmlp() { fit configs/course_convmlp.yaml "$@"; }  # the ConvMLP, about 5 times faster
mkdir -p logs
unet reg8_6k &                                   # the previous regression (0.0282 on 500 test digits)
{ convmlp cm_base; unet reg8_shift2 data.shift=2; } &   # a 5x faster network; whole-pixel shifts of the digit
wait
{ convmlp cm_shift2 data.shift=2; convmlp cm_base_s1 train.seed=1; } &
convmlp cm_drop model.dropout=0.2 train.weight_decay=0.05 &
wait
# validation hole MSE of every model, and the ensemble weights fitted on the same 5,000 digits
B=(checkpoints/reg8_6k/best.pt checkpoints/reg8_shift2/best.pt checkpoints/cm_base/best.pt
   checkpoints/cm_base_s1/best.pt checkpoints/cm_shift2/best.pt checkpoints/cm_drop/best.pt)
$PY scripts/fit_ensemble.py "${B[@]}" --no-progress --out results/course_ensemble_all.json
$PY scripts/fit_ensemble.py checkpoints/cm_base/best.pt checkpoints/cm_base_s1/best.pt --no-progress  # two seeds
$PY scripts/fit_ensemble.py checkpoints/reg8_6k/best.pt checkpoints/reg8_shift2/best.pt --no-progress  # two UNets
# the test digits, once: every single model, the ensemble, the trivial floor; the course's own file and score
test_score() { # NAME CHECKPOINT... [--weights ...]
  local n=$1; shift
  $PY sample.py --checkpoint "$@" --student_name "$n" --task inpaint --n 10000
  $PY evaluate.py --student_name "$n" --task inpaint --n_eval 10000 --no-progress
}
for c in "${B[@]}"; do test_score "$(basename "$(dirname "$c")")_test" "$c"; done
W=$($PY -c "import json; print(' '.join(str(w) for w in json.load(open('results/course_ensemble_all.json'))['weights']))")
test_score ensemble_test "${B[@]}" --weights $W
$PY scripts/trivial_completions.py --n 10000
for n in zero_fill pixel_mean; do $PY evaluate.py --student_name $n --task inpaint --n_eval 10000 --no-progress; done
$PY scripts/inpaint_table.py --against reg8_6k_test zero_fill pixel_mean reg8_6k_test reg8_shift2_test cm_base_test \
  cm_base_s1_test cm_shift2_test cm_drop_test ensemble_test
# the handout's way: one command from test_data.npz to the submission, scored by the course's formula
$PY scripts/make_course_data.py --out data/course
$PY sample.py --checkpoint "${B[@]}" --weights $W --task course --input data/course/test_data.npz --out submission.npz
$PY evaluate.py --task course --pred submission.npz --target data/course/test_truth.npz
