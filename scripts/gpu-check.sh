#!/usr/bin/env bash
# On a machine with an NVIDIA GPU, runs everything in this project that has never run on one and
# writes one Markdown report to attach to a bug report: the machine, then each check passed,
# FAILED or skipped (with why: what this machine lacks is never counted as passed), its figures and
# seconds, and a link to its whole output. Without a GPU every check is skipped and it exits 0.
#   scripts/gpu-check.sh [--out FILE] [--keep-work]
# --out FILE   the report (default gpu-check.md); the logs go beside it, in FILE less .md plus -logs/
# --keep-work  keep the models, engines and videos the checks make (the folder is named at the end)
# Exit status: 0 when no check failed, 1 when one did, 2 for a usage error.
set -euo pipefail

usage() {
  echo "usage: $0 [--out FILE] [--keep-work]" >&2
  exit 2
}
out=gpu-check.md
keep=false
while [ $# -gt 0 ]; do
  case "$1" in
    --out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
    --out=*) out=${1#--out=}; shift ;;
    --keep-work) keep=true; shift ;;
    *) usage ;;
  esac
done
# Relative to where it was started, before the cd below.
out=$(realpath -m -- "$out")
logs=${out%.md}-logs
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

mkdir -p "$(dirname "$out")"
rm -rf "$logs"
mkdir -p "$logs"
work=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
partial=$out.partial.$$
trap 'rm -f "$partial"; $keep || rm -rf "$work"' EXIT

# ---- the report's rows -------------------------------------------------------------------------

names=() results=() notes=() seconds=()
details=""

record() { # NAME RESULT NOTE SECONDS
  names+=("$1") results+=("$2") notes+=("$3") seconds+=("$4")
}
skip() { # NAME REASON
  record "$1" skipped "$2" -
  echo "== $1: skipped: ${2:0:150}"
}
# Changes to the last row: a figure added to it; skipped after all (it ran, but what it checks
# is not on this machine); FAILED after all (it exited 0 but its output says otherwise).
figure() { [ -z "$1" ] || notes[-1]="${notes[-1]:+${notes[-1]}; }$1"; }
demote() { results[-1]=skipped notes[-1]=$1; }
fail() { results[-1]=FAILED; figure "$1"; }
detail() { # TITLE TEXT: a section after the table (tables the checks print)
  [ -z "$2" ] || details+=$'\n'"### $1"$'\n\n'"$2"$'\n'
}

# `ready NAME REASON...`: true when this machine has a GPU and every REASON is empty; otherwise
# records NAME as skipped for the first reason.
ready() {
  local name=$1 reason
  shift
  for reason in "$gpu_lack" "$@"; do
    if [ -n "$reason" ]; then
      skip "$name" "$reason"
      return 1
    fi
  done
  return 0
}

# `needs NAME`: nothing when check NAME passed, else why what depends on it cannot run.
needs() {
  local i
  for i in "${!names[@]}"; do
    if [ "${names[$i]}" = "$1" ]; then
      [ "${results[$i]}" = passed ] || echo "needs $1 (${results[$i]})"
      return 0
    fi
  done
  echo "needs $1 (did not run)"
}

log_of() { echo "$logs/$1.log"; }

# The line that says why a command failed: our binaries' and cargo's `error: ...`, a panic, else
# the last line.
last_error() {
  local line
  line=$(grep -m1 -E '^error|panicked at' "$1" || grep -v -e '^#' -e '^[[:space:]]*$' "$1" | tail -n 1 || true)
  echo "${line:0:300}"
}

# `check NAME LIMIT COMMAND...`: runs COMMAND for at most LIMIT seconds with its output in
# $logs/NAME.log, and records it passed or FAILED with its time; returns COMMAND's status.
check() {
  local name=$1 limit=$2 log status=0 start=$SECONDS took
  shift 2
  log=$(log_of "$name")
  echo "== $name (at most $limit s)"
  { printf '$'; printf ' %q' "$@"; printf '\n\n'; } >"$log"
  # -k: a command that ignores SIGTERM is killed 30 s later.
  timeout -k 30 "$limit" "$@" </dev/null >>"$log" 2>&1 || status=$?
  took=$((SECONDS - start))
  printf '\n# exit status %s after %s s\n' "$status" "$took" >>"$log"
  case "$status" in
    0) record "$name" passed "" "$took" ;;
    124) record "$name" FAILED "timed out after $limit s" "$took" ;;
    137) record "$name" FAILED "killed (SIGKILL): out of memory, or still running 30 s after its $limit s" "$took" ;;
    *) record "$name" FAILED "exit status $status: $(last_error "$log")" "$took" ;;
  esac
  echo "   exit status $status after $took s"
  return "$status"
}

# ---- what this machine has ---------------------------------------------------------------------

# Why this machine counts as having no GPU; empty when nvidia-smi lists one.
gpu_lack=""
gpus=""
if ! command -v nvidia-smi >/dev/null 2>&1; then
  gpu_lack="no NVIDIA GPU: nvidia-smi not found"
elif ! listed=$(timeout 60 nvidia-smi --query-gpu=name --format=csv,noheader 2>&1) || [ -z "$listed" ] ||
  grep -qiE 'no devices|failed|error' <<<"$listed"; then
  gpu_lack="no NVIDIA GPU: nvidia-smi lists no GPU ($(echo "$listed" | head -n 1))"
else
  # compute_cap is unknown to drivers older than 510: then without it.
  gpus=$(timeout 60 nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv,noheader 2>/dev/null ||
    timeout 60 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "$listed")
fi

cargo_lack=""
command -v cargo >/dev/null 2>&1 || cargo_lack="cargo not found (scripts/install.sh installs Rust)"

release=target/release
edge=$release/cyclegan-edge calib=$release/cyclegan-calib train=$release/cyclegan-train
binaries="$release (as found)"
bin_failed=""
missing=false
for b in "$edge" "$calib" "$train"; do [ -x "$b" ] || missing=true; done
# Built from this checkout wherever cargo is (a no-op when up to date), so that the report is of
# the source it names; without cargo (a machine that only runs) the binaries as found.
if [ -z "$cargo_lack" ] || $missing; then
  if ready cargo-build "$cargo_lack"; then
    binaries="$release (built by this run)"
    # The first build takes a while (libtorch, GStreamer bindings); afterwards it is a no-op.
    check cargo-build 3600 cargo build --release --locked -p cyclegan-edge -p cyclegan-calibration -p cyclegan-train ||
      bin_failed="needs cargo-build (FAILED)"
  fi
fi
lack_binary() { # BINARY: why it cannot be used here, or nothing
  if [ -n "$bin_failed" ]; then
    echo "$bin_failed"
  elif [ ! -x "$1" ]; then
    echo "no $1: build it (cargo build --release --locked -p cyclegan-edge -p cyclegan-calibration -p cyclegan-train)"
  fi
}
edge_lack=$(lack_binary "$edge")
calib_lack=$(lack_binary "$calib")
train_lack=$(lack_binary "$train")

# Everything the header says, and more, in one log: the doctor's table without its self-test also
# says whether TensorRT and NVRTC are here.
environment=$(log_of environment)
{
  echo "# $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "== uname -a"; uname -a
  echo "== /etc/os-release"; cat /etc/os-release 2>/dev/null || true
  echo "== git"; git rev-parse HEAD 2>&1 || true; git status --short 2>&1 | head -n 50 || true
  echo "== nvidia-smi"; timeout 60 nvidia-smi 2>&1 || true
  echo "== nvidia-smi --query-gpu"; echo "$gpus"
  echo "== PyTorch of .venv (.venv/libtorch/version.py)"; cat .venv/libtorch/version.py 2>&1 || true
  echo "== cargo, rustc"; cargo --version 2>&1 || true; rustc --version 2>&1 || true
  echo "== ffmpeg"; ffmpeg -hide_banner -version 2>&1 | head -n 1 || true
  if [ -z "$edge_lack" ]; then
    echo "== $edge --version"; "$edge" --version 2>&1 || true
    echo "== $edge doctor --no-self-test"; timeout 120 "$edge" doctor --no-self-test 2>&1 </dev/null || true
  fi
} >"$environment" 2>&1

# `doctor_line WHAT`: the doctor's status and detail for WHAT ("ok 10.3.0 (...)"), or nothing.
doctor_line() {
  sed -n "s/^$1  *\(ok\|missing\|FAILED\)  */\1 /p" "$environment" | head -n 1
}
tensorrt=$(doctor_line TensorRT)
nvrtc=$(doctor_line NVRTC)
trt_lack="$edge_lack"
nvrtc_lack="$edge_lack"
if [ -z "$edge_lack" ]; then
  case "$tensorrt" in
    ok\ *) ;;
    "") trt_lack="TensorRT unknown: cyclegan-edge doctor did not say (see environment.log)" ;;
    *) trt_lack="no TensorRT (the header's TensorRT line says why)" ;;
  esac
  case "$nvrtc" in
    ok\ *) ;;
    "") nvrtc_lack="NVRTC unknown: cyclegan-edge doctor did not say (see environment.log)" ;;
    *) nvrtc_lack="no NVRTC (the header's NVRTC line says why)" ;;
  esac
fi
# `build --precision auto` and --int8-onnx are newer than some builds.
auto_lack="$edge_lack"
if [ -z "$edge_lack" ] && ! "$edge" build --help 2>/dev/null | grep -q -- --int8-onnx; then
  auto_lack="this cyclegan-edge has no build --int8-onnx (--precision auto): rebuild it from a newer checkout"
fi
# build.rs links libtorch_cuda only where the wheel has it; a CPU-only wheel cannot train on CUDA.
torch_lack=""
if [ ! -e .venv/libtorch/lib/libtorch_cuda.so ]; then
  torch_lack="the PyTorch wheel in .venv has no CUDA (no .venv/libtorch/lib/libtorch_cuda.so): install a CUDA build of it, then rebuild cyclegan-train"
fi
ffmpeg_lack=""
command -v ffmpeg >/dev/null 2>&1 || ffmpeg_lack="ffmpeg not found (apt-get install ffmpeg): no PSNR between the outputs"

# ---- the checks --------------------------------------------------------------------------------

demo=models/summer2winter-demo/generator.onnx
clip=models/summer2winter-demo/summer.mp4
mkdir -p "$work/engines" "$work/runs"

# 1. The doctor and its TensorRT self-test (FP32 and FP16 engines of the bundled model against the
# CPU backend). It exits 0 when TensorRT or the GPU is missing: then it checked nothing.
check_doctor() {
  if ! ready doctor "$edge_lack"; then return 0; fi
  local log
  log=$(log_of doctor)
  if check doctor 900 "$edge" doctor; then
    local self_test
    self_test=$(sed -n 's/^TensorRT self-test  *ok  *//p' "$log")
    if [ -n "$self_test" ]; then
      figure "self-test: $self_test"
    else
      demote "self-test not run: $(grep -oE '^(GPU|TensorRT) +missing' "$log" | sed 's/  */ /' | paste -sd ',' - | sed 's/,/, /g') (the doctor's table below)"
    fi
  else
    figure "$(grep -E '  FAILED  ' "$log" | sed 's/  */ /g' | paste -sd ';' - || true)"
  fi
  figure "$(sed -n 's/^CUDA kernels  *ok  */kernels /p' "$log")"
  local fence='```'
  detail "doctor" "$fence"$'\n'"$(sed -e '1,2d' -e '/^# exit status/d' "$log")"$'\n'"$fence"
}

# `tests_figure NAME`: the counts of cargo test's result line; no test run is a failure (a renamed test).
tests_figure() {
  local log counts failed
  log=$(log_of "$1")
  counts=$(grep -E '^test result:' "$log" | tail -n 1 | sed -E 's/.*\. ([0-9]+ passed; [0-9]+ failed).*/\1/' || true)
  failed=$(grep -E '^test .* \.\.\. FAILED' "$log" | sed -E 's/^test (.*) \.\.\. FAILED/\1/' | paste -sd ',' - || true)
  figure "${counts:-no test result line}"
  figure "$(grep -oE 'kernels compiled for sm_[0-9]+' "$log" | head -n 1 || true)"
  [ -z "$failed" ] || figure "failed: $failed"
  case "$counts" in
    "0 passed"*) fail "no test ran: were they renamed?" ;;
  esac
}

# 2. The tests marked #[ignore = "needs a GPU"] (cargo builds the test binaries: the first time
# takes a while).
check_tests() {
  if ready test-cuda-kernels "$cargo_lack"; then
    check test-cuda-kernels 3600 cargo test --locked -p cyclegan-edge --test cuda_kernels -- --ignored --nocapture || true
    tests_figure test-cuda-kernels
  fi
  if ready test-dist-gpu "$cargo_lack" "$torch_lack"; then
    check test-dist-gpu 3600 cargo test --locked -p cyclegan-train --test dist -- --ignored a_single_rank_on_a_gpu || true
    tests_figure test-dist-gpu
    if grep -q "built without NCCL" "$(log_of test-dist-gpu)"; then
      demote "this cyclegan-train was built without NCCL (no CUDA/NCCL headers at build time)"
    fi
  fi
}

# The models the engines are built from: a Q/DQ model of the bundled generator (calibrated on the
# test fixtures), and a paper-size generator (ResNet-9, ngf 64) after one CPU step, with its own.
# Synthetic images also feed the training checks.
setup_models() {
  if ready setup-synth "$train_lack"; then
    check setup-synth 300 "$train" synth --out "$work/synth" --size 256 --train 16 --test 4 || true
  fi
  if ready setup-demo-int8 "$calib_lack"; then
    check setup-demo-int8 600 "$calib" --model "$demo" --images tests/fixtures/summer96 --size 96 --num 12 \
      --out "$work/demo.int8.onnx" --quiet || true
    calib_figure setup-demo-int8
  fi
  if ready setup-paper-fit "$(needs setup-synth)"; then
    check setup-paper-fit 600 "$train" fit --config configs/train/paper-synth64.toml --dataroot "$work/synth" \
      --checkpoints-dir "$work/runs" --name paper-cpu --device cpu --max-iters 1 --sample-freq 0 \
      --save-epoch-freq 0 --num-workers 1 --quiet || true
  fi
  if ready setup-paper-onnx "$(needs setup-paper-fit)"; then
    check setup-paper-onnx 300 "$train" export --checkpoint "$work/runs/paper-cpu" --direction a2b \
      --out "$work/paper.onnx" || true
  fi
  if ready setup-paper-int8 "$calib_lack" "$(needs setup-paper-onnx)"; then
    check setup-paper-int8 900 "$calib" --model "$work/paper.onnx" --images "$work/synth/trainA" --num 8 \
      --out "$work/paper.int8.onnx" --quiet || true
    calib_figure setup-paper-int8
  fi
}
calib_figure() { # NAME: the PSNR of the written INT8 model against FP32 on the held-out images
  local psnr
  psnr=$(grep -m1 '^| INT8 written' "$(log_of "$1")" | cut -d'|' -f3 | tr -d ' ' || true)
  figure "${psnr:+INT8 vs FP32 $psnr dB on held-out images}"
}

# `build_figure NAME`: size and build time of the engine, and a precision note.
build_figure() {
  local log
  log=$(log_of "$1")
  figure "$(grep -oE '[0-9.]+ MB, built in [0-9]+ s' "$log" | tail -n 1 || true)"
  figure "$(grep -m1 '^note: ' "$log" || true)"
}

# 3. Engines: FP16, INT8 and `auto` (both built and timed, the fastest that keeps the PSNR floor)
# of the bundled generator and the paper-size one.
check_builds() {
  local model onnx int8 prefix
  for model in demo paper; do
    if [ "$model" = demo ]; then onnx=$demo prefix=""; else onnx=$work/paper.onnx prefix=$(needs setup-paper-onnx); fi
    int8=$work/$model.int8.onnx
    if ready "build-$model-fp16" "$trt_lack" "$prefix"; then
      check "build-$model-fp16" 1200 "$edge" build --onnx "$onnx" --out "$work/engines/$model.fp16.engine" \
        --precision fp16 --size 256x256 || true
      build_figure "build-$model-fp16"
    fi
    if ready "build-$model-int8" "$trt_lack" "$prefix" "$(needs "setup-$model-int8")"; then
      check "build-$model-int8" 1200 "$edge" build --onnx "$int8" --out "$work/engines/$model.int8.engine" \
        --precision int8 --size 256x256 || true
      build_figure "build-$model-int8"
    fi
    if ready "build-$model-auto" "$trt_lack" "$auto_lack" "$prefix" "$(needs "setup-$model-int8")"; then
      check "build-$model-auto" 1800 "$edge" build --onnx "$onnx" --int8-onnx "$int8" --precision auto \
        --size 640x360 --out "$work/engines/$model.auto.engine" || true
      build_figure "build-$model-auto"
      detail "build-$model-auto: \`build --precision auto\` at 640x360" "$(grep '^|' "$(log_of "build-$model-auto")" || true)"
    fi
  done
}

run_figure() { # NAME: frames and fps, and the latency line
  local log
  log=$(log_of "$1")
  figure "$(sed -nE 's/.*: ([0-9]+ frames) in [0-9.]+ s \(([0-9.]+ fps)\).*/\1, \2/p' "$log" | tail -n 1)"
  figure "$(grep -m1 '^latency p50' "$log" || true)"
}

# 4. The bundled clip through the default pipeline on TensorRT and on the CPU, and the PSNR between
# the two outputs (at 20 Mbit/s, so that H.264 adds little of its own).
check_run() {
  local flags=(--config configs/edge/desktop-cpu.toml --input "$clip" --stats false --bitrate-kbps 20000)
  if ready run-cpu "$trt_lack"; then
    check run-cpu 900 "$edge" run "${flags[@]}" --backend cpu --output "$work/run-cpu.mp4" || true
    run_figure run-cpu
  fi
  if ready run-tensorrt "$trt_lack"; then
    # A fresh engine cache: the engine is built here, not taken from an earlier run.
    check run-tensorrt 900 "$edge" run "${flags[@]}" --backend tensorrt --precision fp16 \
      --engine-cache "$work/engine-cache" --output "$work/run-tensorrt.mp4" || true
    run_figure run-tensorrt
  fi
  if ready run-psnr "$trt_lack" "$ffmpeg_lack" "$(needs run-cpu)" "$(needs run-tensorrt)"; then
    if check run-psnr 300 ffmpeg -hide_banner -nostats -i "$work/run-tensorrt.mp4" -i "$work/run-cpu.mp4" \
      -lavfi psnr -f null -; then
      local line average
      line=$(grep -m1 'PSNR y:' "$(log_of run-psnr)" || true)
      average=$(echo "$line" | sed -nE 's/.*average:([0-9.]+|inf).*/\1/p')
      if [ -z "$average" ]; then
        fail "no PSNR line in ffmpeg's output"
      else
        figure "TensorRT vs CPU: ${line#*PSNR }"
        # Engines match the CPU within 0.05 (doctor's bound: 6.4 levels), far above 30 dB.
        if [ "$average" != inf ] && awk -v a="$average" 'BEGIN { exit !(a < 30) }'; then
          fail "average below 30 dB"
        fi
      fi
    fi
  fi
}

# 4b. Four streams sharing one process against a process each, on TensorRT (engines are per stream
# so far: the figures show what one process saves before engines are shared and batched).
check_streams() {
  if ready bench-streams "$trt_lack"; then
    if check bench-streams 1200 "$edge" bench streams --backend tensorrt --streams 1,4 --rounds 1; then
      local log
      log=$(log_of bench-streams)
      figure "$(awk -F'|' '$2 ~ /^ 4 / { printf "4 streams: fps%s, memory%s", $3, $6 }' "$log")"
      detail "bench-streams: \`cyclegan-edge bench streams --backend tensorrt --streams 1,4\`" "$(grep '^|' "$log" || true)"
    fi
  fi
}

# 5. The CUDA frame kernels' throughput against the GPU's own copy.
check_kernels() {
  if ready bench-kernels "$edge_lack" "$nvrtc_lack"; then
    if check bench-kernels 600 "$edge" bench kernels; then
      local log
      log=$(log_of bench-kernels)
      figure "$(awk -F'|' '$2 ~ /NV12/ { gsub(/ /, ""); printf "NV12 pre %s GB/s, post %s GB/s, copy %s GB/s", $4, $6, $7 }' "$log")"
      detail "bench-kernels: \`cyclegan-edge bench kernels\`" \
        "$(grep -m1 -E 'frame [0-9]+x[0-9]+ ->' "$log" || true)"$'\n\n'"$(grep '^|' "$log" || true)"
    fi
  fi
}

# `train_figure NAME`: images/s over the steps after the first five (batch 1: steps/s), from the
# losses.csv of the run of that name; losses that are not finite are a failure.
train_figure() {
  local log csv rate
  log=$(log_of "$1")
  csv=$work/runs/$1/losses.csv
  rate=$(awk -F, 'NR > 6 { s += $NF; n++ } END { if (n) printf "%.2f", s / n }' "$csv" 2>/dev/null || true)
  figure "${rate:+$rate images/s (steps 6 on, batch 1)}"
  if grep -m1 '^last losses' "$log" | grep -qiE 'nan|inf'; then
    fail "a loss is not finite: $(grep -m1 '^last losses' "$log")"
  fi
}

# 6. The paper's configuration (ResNet-9 ngf 64, 256x256 crops) for 30 CUDA steps, in FP32 and
# with mixed precision, on synthetic images.
check_training() {
  local name precision
  for name in train-cuda train-cuda-amp; do
    precision=$([ "$name" = train-cuda-amp ] && echo true || echo false)
    if ready "$name" "$train_lack" "$torch_lack" "$(needs setup-synth)"; then
      check "$name" 1200 "$train" fit --config configs/train/paper.toml --dataroot "$work/synth" \
        --checkpoints-dir "$work/runs" --name "$name" --device cuda:0 --mixed-precision "$precision" \
        --max-iters 30 --log-freq 1 --sample-freq 0 --save-epoch-freq 0 --num-workers 4 --quiet || true
      train_figure "$name"
    fi
  done
}

# 7. One rank on NCCL, started as torchrun starts ranks (`--nproc 1` would run no process group).
check_nccl() {
  if ! ready train-nccl "$train_lack" "$torch_lack" "$(needs setup-synth)"; then return 0; fi
  local port log
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
    echo $((20000 + RANDOM % 20000)))
  log=$(log_of train-nccl)
  if check train-nccl 600 env RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 LOCAL_WORLD_SIZE=1 MASTER_ADDR=127.0.0.1 \
    MASTER_PORT="$port" "$train" fit --config configs/train/paper-synth64.toml --dataroot "$work/synth" \
    --checkpoints-dir "$work/runs" --name nccl --device cuda --dist-backend nccl --dist-timeout-s 120 \
    --max-iters 2 --sample-freq 0 --save-epoch-freq 0 --num-workers 1 --quiet; then
    if grep -q '^2 steps done' "$log"; then figure "2 steps done"; else fail "no \"2 steps done\" line"; fi
  elif grep -q "built without NCCL" "$log"; then
    demote "this cyclegan-train was built without NCCL (no CUDA/NCCL headers at build time)"
  fi
}

check_doctor
check_tests
setup_models
check_builds
check_run
check_streams
check_kernels
check_training
check_nccl

# ---- the report --------------------------------------------------------------------------------

cell() { # TEXT as one table cell, at most 600 characters (the logs have the rest)
  local s=${1//$'\n'/ }
  [ ${#s} -le 600 ] || s="${s:0:600} …"
  printf '%s' "${s//|/\\|}"
}
passed=0 failed=0 skipped=0
for r in "${results[@]}"; do
  case "$r" in
    passed) passed=$((passed + 1)) ;;
    FAILED) failed=$((failed + 1)) ;;
    *) skipped=$((skipped + 1)) ;;
  esac
done
logs_link=$(basename "$logs")
commit=$(git rev-parse --short HEAD 2>/dev/null || echo "not a git checkout")
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then commit+=" (with uncommitted changes)"; fi
cuda=$(timeout 60 nvidia-smi 2>/dev/null | sed -nE 's/.*CUDA Version: *([0-9.]+).*/\1/p' | head -n 1 || true)
# The doctor's "ok DETAIL" as DETAIL, "missing DETAIL" as "missing: DETAIL".
found() {
  case "$1" in
    "") echo "unknown (cyclegan-edge doctor did not run)" ;;
    ok\ *) echo "${1#ok }" ;;
    *) echo "${1%% *}: ${1#* }" ;;
  esac
}
if [ -z "$edge_lack" ]; then
  headers=$("$edge" --version 2>/dev/null | sed -n 's/^TensorRT headers: //p' || true)
  binaries+=", built $(date -r "$edge" '+%Y-%m-%d %H:%M')"
fi
torch=$(sed -nE "s/^__version__ = '(.*)'/\1/p" .venv/libtorch/version.py 2>/dev/null || true)
torch_cuda=$(sed -nE "s/^cuda: .* = '(.*)'/\1/p" .venv/libtorch/version.py 2>/dev/null || true)
os=$(sed -n 's/^PRETTY_NAME=//p' /etc/os-release 2>/dev/null | tr -d '"' || true)
{
  echo "# GPU check"
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| date | $(date -u '+%Y-%m-%d %H:%M:%S UTC') |"
  echo "| host | $(uname -n) ($(cell "${os:-unknown OS}"), $(uname -sr), $(uname -m)) |"
  gpu_cell=${gpus:-none ($gpu_lack)}
  echo "| GPU (name, driver, compute capability, memory) | $(cell "${gpu_cell//$'\n'/<br>}") |"
  echo "| CUDA (driver) | ${cuda:-unknown} |"
  echo "| TensorRT | $(cell "$(found "$tensorrt")") |"
  echo "| TensorRT headers (build) | $(cell "${headers:-unknown}") |"
  echo "| NVRTC | $(cell "$(found "$nvrtc")") |"
  echo "| PyTorch (.venv) | ${torch:-none}${torch_cuda:+, CUDA $torch_cuda} |"
  echo "| commit | $commit |"
  echo "| binaries | $binaries |"
  echo "| environment | [$logs_link/environment.log]($logs_link/environment.log) (nvidia-smi, doctor without self-test, versions) |"
  echo
  echo "**$passed passed, $failed FAILED, $skipped skipped.** Skipped means not checked here, with why."
  echo
  echo "| check | result | figures or reason | seconds |"
  echo "|---|---|---|---|"
  for i in "${!names[@]}"; do
    name=${names[$i]}
    [ ! -f "$(log_of "$name")" ] || name="[$name]($logs_link/$name.log)"
    echo "| $name | ${results[$i]} | $(cell "${notes[$i]}") | ${seconds[$i]} |"
  done
  printf '%s' "$details"
} >"$partial"
mv "$partial" "$out"

for i in "${!names[@]}"; do printf '%-18s %-7s %s\n' "${names[$i]}" "${results[$i]}" "${notes[$i]:0:100}"; done
echo "wrote $out: $passed passed, $failed FAILED, $skipped skipped (logs in $logs)"
if $keep; then echo "the checks' models, engines and videos: $work"; fi
[ "$failed" = 0 ]
