#!/usr/bin/env bash
# Distillation on real photos, offline: does function matching (teacher and student shown one
# augmented view, [distill] view_*) make a student follow its teacher where the distillation set
# has no examples? scripts/lib/photo_task.py makes the task from the photos bundled with
# scikit-image and scikit-learn (a colour-dependent mapping of our own as the target domain:
# orange turned violet, the rest cooler and sharper); a ResNet-9 teacher (ngf 32) is trained on it
# by `fit` (1600 steps, ~35 min on two cores); mobile students (ngf 24, 9 blocks) are distilled
# from it on the crops with next to no orange only, at two step budgets, each with the views off
# and with the defaults (both at the recipe's learning rate); `cyclegan-train bench distill` then
# measures each pair against the teacher on held-out photos like the distillation set's and on
# held-out orange photos (a dahlia, a cat). Stopped runs resume.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
export PATH="$HOME/.cargo/bin:$PATH"
.venv/bin/pip install --quiet -r requirements-photos.txt
cargo build --release --locked -p cyclegan-train
bin=target/release/cyclegan-train
data=datasets/photos

[ -d $data/teacher/trainA ] || .venv/bin/python scripts/lib/photo_task.py $data
source scripts/lib/resumable.sh
train fit photos-teacher --dataroot $data/teacher --preprocess crop --crop-size 128 --ngf 32 --ndf 32 \
  --n-blocks 9 --n-epochs 3 --n-epochs-decay 2 --domain-a photo --domain-b cold --num-workers 2 \
  --save-epoch-freq 5 --sample-freq 400 --log-freq 40
# Two step budgets (about 2000 and 10000 steps of batch 1: ~5 and ~22 min each on two cores), in
# whole epochs of the distillation crops, each with the views off and with the defaults.
crops=$(find $data/distill/trainA -name '*.png' | wc -l)
for steps in 2080 10400; do
  epochs=$(( (steps + crops - 1) / crops ))
  students=(--config configs/train/distill-mobile.toml --ngf 24 --teacher checkpoints/photos-teacher
    --dataroot $data/distill --preprocess crop --crop-size 128 --n-epochs $((epochs - epochs / 2))
    --n-epochs-decay $((epochs / 2)) --num-workers 2 --save-epoch-freq 20 --sample-freq 2000 --log-freq 100)
  train distill photos-student-plain-$epochs "${students[@]}" --view-dead-leaves 0
  train distill photos-student-views-$epochs "${students[@]}"
  for split in in-range out-of-range; do
    echo "== $((epochs * crops)) steps ($epochs epochs of $crops crops), held-out photos: $split"
    $bin bench distill --teacher checkpoints/photos-teacher --dataroot $data/$split \
      --student checkpoints/photos-student-plain-$epochs --student checkpoints/photos-student-views-$epochs
  done
done
