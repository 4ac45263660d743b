#!/usr/bin/env bash
# The distillation benchmark: a teacher of the paper's size (configs/train/paper-synth64.toml:
# ResNet-9 at ngf 64 on the synthetic task at 64x64, ~25 min on two cores), three mobile students
# distilled from it by configs/train/distill-mobile.toml (GAN Compression's ngf 32 / 9 blocks, the
# same at ngf 24, and the bundled demo's size, ngf 16 / 6 blocks; ~3 min each) and one at ngf 24 with
# the views off, then
# `cyclegan-train bench distill`: parameters, GMAC, ONNX Runtime latency, PSNR against the teacher,
# FID and PSNR against the ground truth, on the 20 held-out pairs. Stopped runs resume.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked -p cyclegan-train
bin=target/release/cyclegan-train
data=datasets/synth64

[ -d $data/trainA ] || $bin synth --out $data --size 64 --train 200 --test 20
source scripts/lib/resumable.sh
train fit paper-synth64 --config configs/train/paper-synth64.toml
# The students on the teacher's data, at the teacher's budget (3000 steps).
on_teacher=(--teacher checkpoints/paper-synth64 --dataroot $data --preprocess crop --crop-size 64
  --n-epochs 8 --n-epochs-decay 7 --num-workers 2 --save-epoch-freq 5 --sample-freq 200 --log-freq 20)
train distill paper-synth64-mobile32 --config configs/train/distill-mobile.toml "${on_teacher[@]}"
train distill paper-synth64-mobile24 --config configs/train/distill-mobile.toml --ngf 24 "${on_teacher[@]}"
train distill paper-synth64-mobile16 --config configs/train/distill-mobile.toml --ngf 16 --n-blocks 6 "${on_teacher[@]}"
train distill paper-synth64-mobile24-off --config configs/train/distill-mobile.toml --ngf 24 --view-dead-leaves 0 \
  "${on_teacher[@]}"
$bin bench distill --teacher checkpoints/paper-synth64 --dataroot $data \
  --student checkpoints/paper-synth64-mobile32 --student checkpoints/paper-synth64-mobile24 \
  --student checkpoints/paper-synth64-mobile16 --student checkpoints/paper-synth64-mobile24-off
