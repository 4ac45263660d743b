#!/usr/bin/env bash
# The whole test suite: unit tests, the PyTorch cross-checks and the training tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo test --workspace --locked
