#!/usr/bin/env bash
# The training-recipe ablation (docs/experiments.md): one lever at a time, at equal images seen (38,400, the
# demo's budget), on the default's network. Each variant trains on one thread (OMP_NUM_THREADS=1) so
# two can share the 2-core machine; their wall-clock is therefore not comparable (images/s of each
# setting measured alone: docs/experiments.md). Each is scored on 2,000 samples (FID biased upwards against
# 5,000, equally for every row). About 13 minutes a variant here.
#   bash scripts/recipe_ablation.sh [PYTHON] [LEVER ...]     (no LEVER: all of them, about 2 hours)
set -euo pipefail
PY=${1:-python}; shift || true
N=2000
variant() { # NAME [overrides]: train configs/default.yaml (without class labels, as the ablation was
  # measured) cut to the demo's budget, sample N digits, score them
  local name=$1; shift
  OMP_NUM_THREADS=1 $PY train.py --config configs/default.yaml --student_name "$name" --restart --no-progress \
    model.num_classes=0 data.labels=digits sample.guidance=0 train.steps=600 train.warmup_steps=100 train.ema_decay=0.995 train.sample_every=0 "$@" > "logs/$name.log" 2>&1
  OMP_NUM_THREADS=1 $PY sample.py --checkpoint "checkpoints/$name/final.pt" --num_samples $N \
    >> "logs/$name.log" 2>&1
  OMP_NUM_THREADS=1 $PY evaluate.py --student_name "$name" --no-progress >> "logs/$name.log" 2>&1
}
resample() { # NAME FROM SAMPLER STEPS: FROM's checkpoint with another sampler
  OMP_NUM_THREADS=1 $PY sample.py --checkpoint "checkpoints/$2/final.pt" --student_name "$1" --num_samples $N \
    --sampler "$3" --steps "$4" > "logs/$1.log" 2>&1
  OMP_NUM_THREADS=1 $PY evaluate.py --student_name "$1" --no-progress >> "logs/$1.log" 2>&1
}
BS16=(train.batch_size=16 train.steps=2400 train.ema_decay=0.998)  # 4x the steps: the same 38,400 images
target() {  # eps with t ~ U{1..T} (DDPM) against v with EDM's log-normal levels, batch 64, lr 2e-3
  variant abl_eps_uniform diffusion.prediction=eps diffusion.level_sampling=uniform &
  variant abl_v_lognormal &
  wait
}
batch() {  # batch 16 (4x the optimizer steps) at lr 1e-3 and 2e-3, against batch 64 (abl_v_lognormal)
  variant abl_bs16 "${BS16[@]}" train.lr=1e-3
  variant abl_bs16_lr2 "${BS16[@]}" train.lr=2e-3
}
sampler() {  # DDPM ancestral steps instead of DPM-Solver++(2M) x10 on abl_bs16
  resample abl_bs16_ddpm10 abl_bs16 ddpm 10
  resample abl_bs16_ddpm20 abl_bs16 ddpm 20
}
width() {  # 24 channels at 28 x 28 (1.54M parameters, 2.2x the multiply-adds per image) against 16 (abl_bs16)
  variant abl_bs16_c24 "${BS16[@]}" train.lr=1e-3 model.channels=24
}
mkdir -p logs
levers=("$@"); [ $# -gt 0 ] || levers=(target batch sampler width)
for lever in "${levers[@]}"; do "$lever"; done
$PY scripts/results_table.py abl_eps_uniform abl_v_lognormal abl_bs16 abl_bs16_lr2 abl_bs16_ddpm10 abl_bs16_ddpm20 abl_bs16_c24
