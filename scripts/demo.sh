#!/usr/bin/env bash
# Installs what the edge runtime needs (GStreamer, ONNX Runtime's library; no PyTorch), builds it,
# and runs its default pipeline: the bundled summer->winter generator on the CPU over the bundled
# summer clip, written to out.mp4.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --edge
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked -p cyclegan-edge -p gst-plugin-cyclegan
target/release/cyclegan-edge run --config configs/edge/desktop-cpu.toml "$@"
echo "Look at: out.mp4 (winter), models/summer2winter-demo/summer.mp4 (its input)"
