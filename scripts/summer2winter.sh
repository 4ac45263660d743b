#!/usr/bin/env bash
# Real summer -> winter from nothing, on a GPU workstation: the reference CycleGAN project's
# summer2winter_yosemite photos and its pretrained ResNet generator (the teacher), a mobile student
# distilled from it on the summer photos, FID/KID of both against the real winter photos, the
# student exported, calibrated to INT8 on training photos, a TensorRT engine where TensorRT and a
# GPU are, and the student on the bundled summer clip. Everything lands in $WORK
# (work/summer2winter); a stopped run starts again where it was (downloads resume, the
# distillation resumes from its last checkpoint).
#
#   scripts/summer2winter.sh           the real thing (CUDA; DEVICE=cpu to force the CPU)
#   scripts/summer2winter.sh --tiny    the same steps end to end on the CPU in minutes, against a
#                                      local server holding a small synthetic dataset and a small
#                                      generator in the reference's layout (what CI runs)
#
# Expected on a desktop GPU (RTX 4090 class; estimated, not yet measured): dataset ~130 MB and
# teacher 45 MB, a minute on a fast line; distillation (configs/train/distill-mobile.toml, 200
# epochs of 1231 photos at 256x256) ~1.5 h; FID/KID ~1 min per generator; export and calibration
# ~1 min; engine build ~1 min; the clip seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
tiny=false
for arg in "$@"; do
  case "$arg" in
    --tiny) tiny=true ;;
    *) echo "usage: $0 [--tiny]" >&2; exit 2 ;;
  esac
done
name=summer2winter_yosemite
scripts/install.sh
export PATH="$HOME/.cargo/bin:$PATH"
if $tiny; then
  # The test suite's build: its binaries are already there after scripts/test.sh.
  profile=debug build=()
  work=${WORK:-target/summer2winter-tiny}
  device=cpu
  rm -rf "$work"
else
  profile=release build=(--release)
  work=${WORK:-work/summer2winter}
  device=${DEVICE:-cuda:0}
fi
cargo build "${build[@]}" --locked -p cyclegan-train -p cyclegan-calibration -p cyclegan-edge
train=target/$profile/cyclegan-train calib=target/$profile/cyclegan-calib edge=target/$profile/cyclegan-edge
mkdir -p "$work"
# The downloads' cache, in the work folder so that the steps below find the teacher's .pth.
export CYCLEGAN_CACHE_DIR="$work/cache"
step() { echo "== $(date +%T) $*"; }

if $tiny; then
  step "tiny: a local server with a synthetic $name.zip and a small reference-layout generator"
  www="$work/www"
  mkdir -p "$www/datasets" "$www/pretrained_models"
  "$train" synth --out "$work/src/$name" --size 64 --train 16 --test 8 >/dev/null
  (cd "$work/src" && ../../../.venv/bin/python -m zipfile -c "../www/datasets/$name.zip" "$name")
  .venv/bin/python train/python/cyclegan_reference.py save-pth --ngf 8 --n-blocks 6 --pytorch03 \
    --out "$www/pretrained_models/$name.pth"
  port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  .venv/bin/python -m http.server "$port" --bind 127.0.0.1 --directory "$www" >/dev/null 2>&1 &
  server=$!
  trap 'kill $server 2>/dev/null || true' EXIT
  export CYCLEGAN_MIRROR="http://127.0.0.1:$port"
  for _ in $(seq 50); do
    .venv/bin/python -c "import urllib.request as u; u.urlopen('$CYCLEGAN_MIRROR/')" 2>/dev/null && break
    sleep 0.2
  done
  distill=(--load-size 72 --crop-size 64 --ngf 8 --n-blocks 3 --max-iters 16 --num-workers 1 --sample-freq 8
    --save-epoch-freq 1 --quiet)
  calibrate=(--num 8 --size 64)
  clip=(--num-frames 8 --width 96 --height 64 --backend cpu)
else
  distill=()
  calibrate=()
  clip=()
fi

step "dataset: $name"
"$train" datasets get "$name" --root "$work/datasets"
data="$work/datasets/$name"

step "teacher: the pretrained $name generator, as ONNX and as a checkpoint"
"$edge" models get "$name"
teacher="$work/checkpoints/teacher"
[ -e "$teacher/latest" ] || "$train" import --pth "$CYCLEGAN_CACHE_DIR/pretrained/$name.pth" --out "$teacher"

step "student: distilled from the teacher on the summer photos ($device)"
student="$work/checkpoints/student"
if [ -e "$student/latest" ]; then
  "$train" distill --resume "$student" --device "$device" "${distill[@]}"
else
  "$train" distill --config configs/train/distill-mobile.toml --teacher "$teacher" --dataroot "$data" \
    --domain-a summer --domain-b winter --checkpoints-dir "$work/checkpoints" --name student --device "$device" \
    "${distill[@]}"
fi

for who in teacher student; do
  step "FID/KID of the $who against the real winter photos"
  "$train" eval fid --real "$data/testB" --checkpoint "$work/checkpoints/$who" --input "$data/testA" --device "$device"
done

step "export and INT8 calibration of the student on training photos"
"$train" export --checkpoint "$student" --out "$work/student.onnx"
"$calib" --model "$work/student.onnx" --images "$data/trainA" --out "$work/student.int8.onnx" \
  --report "$work/calibration" "${calibrate[@]}"

if "$edge" doctor --no-self-test | grep -Eq '^TensorRT +ok' && "$edge" doctor --no-self-test | grep -Eq '^GPU +ok'; then
  step "TensorRT engine of the INT8 student"
  "$edge" build --onnx "$work/student.int8.onnx" --precision int8 --out "$work/student.int8.engine"
else
  step "no TensorRT and GPU here: the CPU runs the ONNX (cyclegan-edge doctor says what is missing)"
fi

step "the student on the bundled summer clip"
"$edge" run --model "$work/student.int8.onnx" --input models/summer2winter-demo/summer.mp4 \
  --output "$work/student.mp4" --stats false "${clip[@]}"
echo "Look at: $work/student.mp4, the sample grids in $student/samples, $work/calibration/compare.png"
