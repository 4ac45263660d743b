#!/usr/bin/env bash
# The INT8 benchmark: post-training quantization with each scale method, with the residual Adds
# in float, with a --target-psnr 35 search from TensorRT's entropy and from the MSE scales,
# NVIDIA's Model Optimizer (max and entropy, on the same FP32 export and calibration tensors as
# the MSE run: calibration/python/modelopt_peer.py), and quantization-aware fine-tuning
# (configs/train/qat.toml, from the MSE calibration and from the TensorRT entropy one), on the
# paper-size ResNet-9 of scripts/bench-distill.sh (configs/train/paper-synth64.toml, ngf 64) and
# its ngf 24 mobile student. Everything calibrates and fine-tunes on trainA; `cyclegan-calib
# evaluate` measures on the 20 held-out testA images: Q/DQ placement, layers in float, INT8 share
# of MACs, PSNR and SSIM vs FP32, ONNX Runtime CPU ms at 256x256. Stopped runs resume; the
# tables go to checkpoints/bench-qat/.
#   scripts/bench-qat.sh [--no-qat] [NAME...]
# NAME... measures checkpoints/NAME (a2b, trained on datasets/synth64) instead of training the
# pair; --no-qat leaves the fine-tuning out; NAME `reference` is a ResNet-9 (ngf 64, PyTorch's
# initialisation) saved by torch.save in the reference project's layout and imported with
# `cyclegan-edge models import`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked -p cyclegan-train -p cyclegan-calibration -p cyclegan-edge
bin=target/release/cyclegan-train
calib=target/release/cyclegan-calib
qat=true
if [ "${1:-}" = --no-qat ]; then
  qat=false
  shift
fi
data=datasets/synth64
out=checkpoints/bench-qat
mkdir -p $out

[ -d $data/trainA ] || $bin synth --out $data --size 64 --train 200 --test 20
source scripts/lib/resumable.sh

# `post_training NAME FP32`: each post-training method and Model Optimizer's on FP32, into int8.
post_training() {
  local name=$1 fp32=$2
  ptq() {
    local run=$1
    shift
    $calib --model $fp32 --images $data/trainA --num 128 --out $out/$name.$run.int8.onnx \
      --report $out/$name.$run --quiet "$@" > /dev/null
    int8+=($out/$name.$run.int8.onnx)
  }
  ptq trt-entropy --method trt-entropy
  ptq minmax --method minmax
  ptq mse --method mse --save-inputs
  ptq mse-float-residual --method mse --float-residual
  ptq trt-entropy-target35 --method trt-entropy --target-psnr 35
  ptq mse-target35 --method mse --target-psnr 35
  .venv/bin/python calibration/python/modelopt_peer.py $fp32 $out/$name.mse/calibration.safetensors \
    $out/$name.modelopt > /dev/null
  int8+=($out/$name.modelopt/modelopt-max.onnx $out/$name.modelopt/modelopt-entropy.onnx)
}

# `evaluate NAME FP32`: the table of int8's models against FP32.
evaluate() {
  $calib evaluate --model $2 --images $data/testA --threads 2 --int8 "$(IFS=,; echo "${int8[*]}")" \
    | tee $out/$1.md
}

# `measure MODEL`: the post-training methods and the fine-tuning of checkpoints/MODEL, then the table.
measure() {
  local model=$1
  local fp32=$out/$model.fp32.onnx
  int8=()
  if [ "$model" = reference ]; then
    .venv/bin/python train/python/cyclegan_reference.py save-pth --ngf 64 --n-blocks 9 --out $out/reference.pth
    # Writes $out/reference.fp32.onnx (and .fp16.onnx).
    target/release/cyclegan-edge models import $out/reference.pth --domains summer,winter --training-resolution 64 \
      --out $out > /dev/null
  else
    $bin export --checkpoint checkpoints/$model --direction a2b --out $fp32
  fi
  post_training $model $fp32
  if $qat && [ "$model" != reference ]; then
    train qat $model-qat --config configs/train/qat.toml --checkpoint checkpoints/$model
    train qat $model-qat-entropy --config configs/train/qat.toml --checkpoint checkpoints/$model \
      --calibrated $out/$model.trt-entropy.int8.onnx
    for run in $model-qat $model-qat-entropy; do
      $bin export --checkpoint checkpoints/$run --direction a2b --precision int8 --out $out/$run.int8.onnx
      int8+=($out/$run.int8.onnx)
    done
  fi
  evaluate $model $fp32
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
measure reference
