#!/usr/bin/env bash
# Fuzzes the file readers with cargo-fuzz (libFuzzer + AddressSanitizer): PyTorch .pth files,
# ONNX models and checkpoint safetensors. usage: scripts/fuzz.sh [SECONDS per target, default 60]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
export PATH="$HOME/.cargo/bin:$PATH"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

corpus=fuzz/corpus
mkdir -p "$corpus"/{pth_reader,onnx_reader,checkpoint_reader}
if [ -z "$(ls -A "$corpus/pth_reader")" ]; then
  seeds=$(mktemp -d)
  .venv/bin/python -c "import torch; from safetensors.torch import save_file; save_file({'x': torch.zeros(1, 3, 8, 8)}, '$seeds/x.safetensors')"
  for legacy in "" --legacy; do
    .venv/bin/python train/python/cyclegan_reference.py save-pth --ngf 2 --n-blocks 2 $legacy \
      --out "$seeds/g$legacy.pth" --input "$seeds/x.safetensors" --output "$seeds/y.safetensors"
  done
  cp "$seeds"/g*.pth "$corpus/pth_reader/"
  cargo run -q -p cyclegan-train -- import --pth "$seeds/g.pth" --out "$seeds/ckpt"
  cargo run -q -p cyclegan-train -- export --checkpoint "$seeds/ckpt" --direction a2b --out "$corpus/onnx_reader/g.onnx"
  cp "$seeds/ckpt/G_A.safetensors" "$corpus/checkpoint_reader/"
  rm -rf "$seeds"
fi

# cargo-fuzz passes -Z sanitizer flags; this lets the stable toolchain accept them. Set only
# now: cargo rebuilds everything when it changes.
export RUSTC_BOOTSTRAP=1
for target in pth_reader onnx_reader checkpoint_reader; do
  echo "== fuzzing $target for ${secs}s"
  cargo fuzz run "$target" "$corpus/$target" -- -max_total_time="$secs" -rss_limit_mb=4096 -max_len=65536
done
