#!/usr/bin/env bash
# Puts TensorRT 11.4's headers in target/tensorrt-headers/include (the fallback edge/build.rs
# compiles the TensorRT shim against when no TensorRT SDK headers are installed) and prints
# that folder. The headers come from the trtx-sys crate's source, fetched (not built) by cargo
# and checked against scripts/tensorrt-headers/Cargo.lock.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
dest=target/tensorrt-headers/include
if [ ! -f "$dest/NvInfer.h" ] || [ ! -f "$dest/NvOnnxParser.h" ]; then
  manifest=scripts/tensorrt-headers/Cargo.toml
  cargo fetch --locked --manifest-path "$manifest" --target "$(rustc -vV | sed -n 's/^host: //p')" >&2
  src=$(cargo metadata --locked --format-version 1 --manifest-path "$manifest" |
    python3 -c 'import json, sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"] == "trtx-sys"))')
  headers=$(dirname "$src")/TensorRT-Headers/TRT-Enterprise-11.4
  rm -rf "$dest.partial"
  mkdir -p "$dest.partial"
  cp "$headers"/*.h "$dest.partial"/
  cp -r "$headers"/impl "$dest.partial"/ 2>/dev/null || true
  rm -rf "$dest"
  mv "$dest.partial" "$dest"
fi
realpath "$dest"
