#!/usr/bin/env bash
# Distillation on real photos, offline: does function matching (teacher and student shown one
# augmented view, [distill] view_*) make a student follow its teacher where the distillation set
# has no examples? scripts/lib/photo_task.py makes the task from the photos bundled with
# scikit-image and scikit-learn (a "cold" colour-and-texture mapping of our own as the target
# domain); a ResNet-9 teacher (ngf 32) is trained on it by `fit` (~30 min on two cores); two mobile
# students (ngf 24, 9 blocks) are distilled from it at the same step budget on crops of the
# photos with little orange only, one with the views off (the earlier distillation), one with
# the defaults (~10 min each); `cyclegan-train bench distill` then measures both against the
# teacher on held-out photos like the distillation set's and on held-out orange photos (a
# dahlia, a cat). Stopped runs resume.
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
  --n-blocks 9 --n-epochs 5 --n-epochs-decay 5 --domain-a photo --domain-b cold --num-workers 2 \
  --save-epoch-freq 5 --sample-freq 400 --log-freq 40
# Both students: 13 epochs of the 160 distillation crops (2080 steps).
students=(--config configs/train/distill-mobile.toml --ngf 24 --teacher checkpoints/photos-teacher
  --dataroot $data/distill --preprocess crop --crop-size 128 --n-epochs 7 --n-epochs-decay 6
  --num-workers 2 --save-epoch-freq 5 --sample-freq 400 --log-freq 40)
train distill photos-student-plain "${students[@]}" --view-brightness 0 --view-contrast 0 \
  --view-saturation 0 --view-hue 0 --view-crop-scale 1 --view-flip 0 --view-mixup 0
train distill photos-student-views "${students[@]}"
for split in in-range out-of-range; do
  echo "== held-out photos: $split"
  $bin bench distill --teacher checkpoints/photos-teacher --dataroot $data/$split \
    --student checkpoints/photos-student-plain --student checkpoints/photos-student-views
done
