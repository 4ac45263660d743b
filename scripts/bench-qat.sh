#!/usr/bin/env bash
# The INT8 benchmark: post-training quantization with each scale method, with the residual skips
# in float, with a --target-psnr 35 search from the entropy and from the MSE scales, and
# quantization-aware fine-tuning (configs/train/qat.toml, from the MSE calibration and from the
# entropy one), on the paper-size ResNet-9 of
# scripts/bench-distill.sh (configs/train/paper-synth64.toml, ngf 64) and its ngf 24 mobile
# student. Everything calibrates and fine-tunes on trainA; `cyclegan-calib evaluate` measures
# on the 20 held-out testA images: layers in float, INT8 share of MACs, PSNR and SSIM vs FP32,
# ONNX Runtime CPU ms at 256x256. Stopped runs resume; the tables go to checkpoints/bench-qat/.
# `scripts/bench-qat.sh NAME...` measures checkpoints/NAME (a2b, trained on datasets/synth64)
# instead of training the pair.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked -p cyclegan-train -p cyclegan-calibration
bin=target/release/cyclegan-train
calib=target/release/cyclegan-calib
data=datasets/synth64
out=checkpoints/bench-qat
mkdir -p $out

[ -d $data/trainA ] || $bin synth --out $data --size 64 --train 200 --test 20
source scripts/lib/resumable.sh

# `measure MODEL`: the post-training methods and the fine-tuning of checkpoints/MODEL, then the table.
measure() {
  local model=$1
  local fp32=$out/$model.fp32.onnx
  local int8=()
  $bin export --checkpoint checkpoints/$model --direction a2b --out $fp32
  ptq() {
    local name=$1
    shift
    $calib --model $fp32 --images $data/trainA --num 128 --out $out/$model.$name.int8.onnx \
      --report $out/$model.$name --quiet "$@" > /dev/null
    int8+=($out/$model.$name.int8.onnx)
  }
  ptq entropy --method entropy
  ptq minmax --method minmax
  ptq mse --method mse
  ptq mse-float-residual --method mse --float-residual
  ptq entropy-target35 --method entropy --target-psnr 35
  ptq mse-target35 --method mse --target-psnr 35
  train qat $model-qat --config configs/train/qat.toml --checkpoint checkpoints/$model
  train qat $model-qat-entropy --config configs/train/qat.toml --checkpoint checkpoints/$model \
    --calibrated $out/$model.entropy.int8.onnx
  for run in $model-qat $model-qat-entropy; do
    $bin export --checkpoint checkpoints/$run --direction a2b --precision int8 --out $out/$run.int8.onnx
    int8+=($out/$run.int8.onnx)
  done
  $calib evaluate --model $fp32 --images $data/testA --threads 2 --int8 "$(IFS=,; echo "${int8[*]}")" \
    | tee $out/$model.md
}

if [ $# -gt 0 ]; then
  for model in "$@"; do measure "$model"; done
  exit 0
fi
train fit paper-synth64 --config configs/train/paper-synth64.toml
measure paper-synth64
train distill paper-synth64-mobile24 --config configs/train/distill-mobile.toml --ngf 24 \
  --teacher checkpoints/paper-synth64 --dataroot $data --preprocess crop --crop-size 64 \
  --n-epochs 8 --n-epochs-decay 7 --num-workers 2 --save-epoch-freq 5 --sample-freq 200 --log-freq 20
measure paper-synth64-mobile24
