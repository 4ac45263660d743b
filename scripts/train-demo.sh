#!/usr/bin/env bash
# Installs everything, then a short training run on the synthetic summer->winter dataset,
# translation of its test images, and the PSNR against the known answer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked -p cyclegan-train
bin=target/release/cyclegan-train

[ -d datasets/synth/trainA ] || $bin synth --out datasets/synth --size 64 --train 100 --test 20
if [ -e checkpoints/synth-demo/latest ]; then
  $bin fit --resume checkpoints/synth-demo
else
  $bin fit --config configs/train/synth-demo.toml
fi
$bin translate --checkpoint checkpoints/synth-demo --direction a2b --input datasets/synth/testA --out out/synth-demo/a2b
$bin eval psnr --checkpoint checkpoints/synth-demo --dataroot datasets/synth
echo "Look at: checkpoints/synth-demo/samples/ (sample grids), checkpoints/synth-demo/loss_curves.png,"
echo "         checkpoints/synth-demo/losses.csv, out/synth-demo/a2b/ (translated test images)"
