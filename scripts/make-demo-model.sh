#!/usr/bin/env bash
# Rebuilds the bundled demo generator (models/summer2winter-demo/) from nothing: the synthetic
# dataset, the teacher (configs/train/edge-demo.toml: ResNet-9 at ngf 32, ~35 min on two cores),
# its mobile student (configs/train/edge-demo-student.toml, ~5 min), which is what is bundled,
# export, evaluation, and the summer clip the demo pipeline plays.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked -p cyclegan-train
bin=target/release/cyclegan-train
out=models/summer2winter-demo

[ -d datasets/synth128/trainA ] || $bin synth --out datasets/synth128 --size 128 --train 200 --test 20
source scripts/lib/resumable.sh
train fit edge-demo --config configs/train/edge-demo.toml
train distill edge-demo-student --config configs/train/edge-demo-student.toml
$bin export --checkpoint checkpoints/edge-demo-student --direction a2b --out "$out/generator.onnx"
$bin eval psnr --checkpoint checkpoints/edge-demo --dataroot datasets/synth128
$bin eval psnr --checkpoint checkpoints/edge-demo-student --dataroot datasets/synth128
cp configs/train/edge-demo-student.toml "$out/train.toml"
cp configs/train/edge-demo.toml "$out/teacher.toml"

# The clip: 40 held-out summer landscapes (another seed than the training set), 2 per second.
clip=$(mktemp -d)
$bin synth --out "$clip" --size 256 --train 1 --test 40 --seed 7
gst-launch-1.0 -q multifilesrc location="$clip/testA/%05d.png" index=0 stop-index=39 caps="image/png,framerate=2/1" \
  ! pngdec ! videoconvert ! videorate ! video/x-raw,format=I420,framerate=10/1 \
  ! x264enc bitrate=600 speed-preset=slow key-int-max=20 ! mp4mux ! filesink location="$out/summer.mp4"
rm -rf "$clip"
