#!/usr/bin/env bash
# Installs everything the workspace needs on Debian/Ubuntu: system packages, a Rust toolchain
# (if none), GStreamer with its development files, a Python venv in .venv with PyTorch
# (libtorch for tch, and the reference peer) and ONNX Runtime (the edge runtime's CPU engine),
# and TensorRT's headers (for the TensorRT shim; TensorRT itself is loaded at run time).
# Safe to run again: finished steps are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
# With a second architecture added (scripts/cross-install.sh) a bare name can be ambiguous.
installed() { dpkg -s "$1" >/dev/null 2>&1 || dpkg -s "$1:$(dpkg --print-architecture)" >/dev/null 2>&1; }

apt_packages=(build-essential pkg-config libgomp1 fonts-dejavu-core ca-certificates curl
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-tools gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-libav)
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

stamp=.venv/.requirements-$(sha256sum requirements.txt | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "== pip: installing requirements.txt into .venv (PyTorch is a large download)"
  python3 -m venv .venv
  .venv/bin/pip install -q --no-cache-dir --upgrade pip
  .venv/bin/pip install -q --no-cache-dir -r requirements.txt
  rm -f .venv/.requirements-*
  touch "$stamp"
fi

# TensorRT's headers for the TensorRT shim where no TensorRT SDK is installed (edge/build.rs
# prefers the system's: JetPack's, or NVIDIA's libnvinfer-dev).
scripts/tensorrt-headers.sh >/dev/null

# A stable path to the wheel's libtorch for .cargo/config.toml (LIBTORCH).
torch_dir=$(.venv/bin/python -c 'import os, torch; print(os.path.dirname(torch.__file__))')
ln -sfn "$(realpath --relative-to=.venv "$torch_dir")" .venv/libtorch
echo "== ready: $(cargo --version), torch $(.venv/bin/python -c 'import torch; print(torch.__version__)')"
