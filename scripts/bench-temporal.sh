#!/usr/bin/env bash
# The temporal-consistency benchmark: one model (configs/train/temporal-synth64.toml: ResNet-9 at
# ngf 32 on the synthetic task at 64x64) trained twice at the same budget, without and with
# `--lambda-temporal 10` (about a quarter of an hour each on two cores), then for each: PSNR against the ground
# truth (`cyclegan-train eval`), the warping error and still-scene flicker of the checkpoint
# (`eval temporal`) and of its ONNX export with temporal-smoothing 0, 0.5 and 0.8
# (`cyclegan-edge bench temporal`), on the 20 held-out pairs and, given a folder of photos as
# the first argument, on sequences made from those. Stopped runs resume.
set -euo pipefail
cd "$(dirname "$0")/.."
photos=${1:-}
if [ -n "$photos" ] && [ ! -d "$photos" ]; then
  echo "usage: $0 [PHOTOS_DIR]: $photos is not a folder" >&2
  exit 2
fi
scripts/install.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked -p cyclegan-train -p cyclegan-edge
bin=target/release/cyclegan-train
edge=target/release/cyclegan-edge
data=datasets/synth64

[ -d $data/trainA ] || $bin synth --out $data --size 64 --train 200 --test 20
source scripts/lib/resumable.sh
train fit temporal-synth64 --config configs/train/temporal-synth64.toml
train fit temporal-synth64-lt10 --config configs/train/temporal-synth64.toml --lambda-temporal 10
for run in temporal-synth64 temporal-synth64-lt10; do
  echo "== $run"
  $bin eval psnr --checkpoint checkpoints/$run --dataroot $data
  $bin eval temporal --checkpoint checkpoints/$run --input $data/testA --max-images 20
  $bin export --checkpoint checkpoints/$run --direction a2b --out checkpoints/$run/G_A.onnx
  $edge bench temporal --model checkpoints/$run/G_A.onnx --input $data/testA --max-images 20 --threads 2
  if [ -n "$photos" ]; then
    $edge bench temporal --model checkpoints/$run/G_A.onnx --input "$photos" --threads 2
  fi
done
