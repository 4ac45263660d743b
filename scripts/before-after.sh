#!/usr/bin/env bash
# Makes docs/img/before-after.png: three moments of the bundled summer clip (top) and the same
# frames out of the default pipeline, the bundled generator on the CPU (bottom).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --locked -p cyclegan-edge
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The pipeline at the clip's own size (256x256), then both clips as numbered PNG frames.
target/debug/cyclegan-edge run --config configs/edge/desktop-cpu.toml --width 256 --height 256 \
  --output "$work/winter.mp4"
for clip in summer:models/summer2winter-demo/summer.mp4 winter:$work/winter.mp4; do
  mkdir "$work/${clip%%:*}"
  gst-launch-1.0 -q filesrc location="${clip#*:}" ! decodebin ! videoconvert ! pngenc \
    ! multifilesink location="$work/${clip%%:*}/%04d.png"
done

# Frames 15, 75 and 135 (seconds 1.5, 7.5, 13.5: three different scenes), 3 x 2 on one picture.
frames=(15 75 135)
pipeline="compositor name=mix background=white"
inputs=""
for col in 0 1 2; do
  for row in 0 1; do
    dir=$([ "$row" = 0 ] && echo summer || echo winter)
    pad="mix.sink_$((col * 2 + row))"
    pipeline+=" sink_$((col * 2 + row))::xpos=$((col * 264)) sink_$((col * 2 + row))::ypos=$((row * 264))"
    inputs+=" multifilesrc location=$work/$dir/$(printf %04d "${frames[$col]}").png num-buffers=1"
    inputs+=" caps=image/png,framerate=1/1 ! pngdec ! videoconvert ! $pad"
  done
done
mkdir -p docs/img
# shellcheck disable=SC2086
gst-launch-1.0 -q $pipeline ! videoconvert ! pngenc ! filesink location=docs/img/before-after.png $inputs
echo "wrote docs/img/before-after.png"
