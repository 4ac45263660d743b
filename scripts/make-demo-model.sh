#!/usr/bin/env bash
# Rebuilds the bundled demo generator (models/summer2winter-demo/) from nothing: the synthetic
# dataset, training (configs/train/edge-demo.toml, ~30 min on two cores), export, evaluation, and
# the summer clip the demo pipeline plays.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked -j 2 -p cyclegan-train
bin=target/release/cyclegan-train
out=models/summer2winter-demo

[ -d datasets/synth128/trainA ] || $bin synth --out datasets/synth128 --size 128 --train 200 --test 20
if [ -e checkpoints/edge-demo/latest ]; then
  $bin fit --resume checkpoints/edge-demo
else
  $bin fit --config configs/train/edge-demo.toml
fi
$bin export --checkpoint checkpoints/edge-demo --direction a2b --out "$out/generator.onnx"
$bin eval --checkpoint checkpoints/edge-demo --dataroot datasets/synth128
cp configs/train/edge-demo.toml "$out/train.toml"

# The clip: 40 held-out summer landscapes (another seed than the training set), 2 per second.
clip=$(mktemp -d)
$bin synth --out "$clip" --size 256 --train 1 --test 40 --seed 7
gst-launch-1.0 -q multifilesrc location="$clip/testA/%05d.png" index=0 stop-index=39 caps="image/png,framerate=2/1" \
  ! pngdec ! videoconvert ! videorate ! video/x-raw,format=I420,framerate=10/1 \
  ! x264enc bitrate=600 speed-preset=slow key-int-max=20 ! mp4mux ! filesink location="$out/summer.mp4"
rm -rf "$clip"
