#!/usr/bin/env bash
# Data-parallel throughput on this machine's CPU: the paper-size CycleGAN of
# configs/train/paper-synth64.toml (ResNet-9 ngf 64, 64x64 crops) for STEPS steps (default 30)
# as one process of batch 2 with every core, as two ranks (`fit --nproc 2`, Gloo over 127.0.0.1)
# of batch 1 with half the cores each, and as one process of batch 1. Same total threads, same
# global batch in the first two; images/s is the mean over the steps after the first five.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked -p cyclegan-train
bin=target/release/cyclegan-train
data=datasets/synth64
out=checkpoints/bench-dist
steps=${1:-30}
cores=$(nproc)
[ -d $data/trainA ] || $bin synth --out $data --size 64 --train 200 --test 20
rm -rf $out
mkdir -p $out

# `run NAME THREADS ARGS...`: a fresh run of `steps` steps; prints its mean images/s.
run() {
  local name=$1 threads=$2
  shift 2
  $bin fit --config configs/train/paper-synth64.toml --checkpoints-dir $out --name "$name" --threads "$threads" \
    --log-freq 1 --sample-freq 0 --max-iters "$steps" --quiet "$@" > $out/$name.log 2>&1
  awk -F, 'NR > 6 { s += $NF; n++ } END { printf "%.2f", s / n }' $out/$name/losses.csv
}

one=$(run one-batch2 "$cores" --batch-size 2)
two=$(run two-ranks $((cores / 2 > 0 ? cores / 2 : 1)) --batch-size 1 --nproc 2)
single=$(run one-batch1 "$cores" --batch-size 1)
{
  echo "| processes x threads | batch per process | global batch | images/s | vs one process, batch 2 |"
  echo "|---|---|---|---|---|"
  echo "| 1 x $cores | 2 | 2 | $one | 1.00x |"
  echo "| 2 x $((cores / 2 > 0 ? cores / 2 : 1)) (--nproc 2, Gloo) | 1 | 2 | $two | $(awk "BEGIN { printf \"%.2f\", $two / $one }")x |"
  echo "| 1 x $cores | 1 | 1 | $single | $(awk "BEGIN { printf \"%.2f\", $single / $one }")x |"
} | tee $out/table.md
