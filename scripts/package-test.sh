#!/usr/bin/env bash
# Tests the Debian packages scripts/package.sh builds, as a machine without the checkout sees them.
# amd64: installed with apt, then used with no GST_PLUGIN_PATH, no ORT_DYLIB_PATH, from a folder
# outside the checkout (gst-inspect-1.0, gst-launch-1.0, `cyclegan-edge run` with a shipped config,
# doctor, the service unit, broken installs), then purged, leaving nothing behind.
# arm64: its files and their ELF architecture, and the binary and plugin run under qemu.
# Installs and removes a system package: root (or sudo) on a machine you can change (CI).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
fail() { echo "package-test: $*" >&2; exit 1; }
version=$(sed -n '1s/^cyclegan-edge (\(.*\)).*/\1/p' packaging/debian/changelog)
amd64=$repo/target/debian/cyclegan-edge_${version}_amd64.deb
arm64=$repo/target/debian/cyclegan-edge_${version}_arm64.deb
[ -f "$amd64" ] && [ -f "$arm64" ] || fail "build the packages first: scripts/package.sh"
ort_version=$(sed -n 's/^onnxruntime==//p' requirements-edge.txt)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== arm64: files and architecture"
dpkg-deb -x "$arm64" "$work/arm64"
for f in usr/bin/cyclegan-edge usr/lib/aarch64-linux-gnu/gstreamer-1.0/libgstcyclegan.so \
  "usr/lib/cyclegan-edge/libonnxruntime.so.$ort_version"; do
  file -L "$work/arm64/$f" | grep -q 'ELF 64-bit LSB .* ARM aarch64' || fail "arm64 package: $f is not an aarch64 ELF"
done
[ "$(dpkg-deb -f "$arm64" Architecture)" = arm64 ] || fail "arm64 package: wrong Architecture field"
dpkg-deb -f "$arm64" Recommends | grep -q nvidia-l4t-gstreamer || fail "arm64 package: does not recommend nvidia-l4t-gstreamer"
echo "== arm64: the binary and the plugin under qemu"
runner=$repo/scripts/aarch64/runner
"$runner" "$work/arm64/usr/bin/cyclegan-edge" --version | grep -qx "cyclegan-edge ${version%-*}" ||
  fail "arm64 cyclegan-edge --version"
# The plugin as GStreamer's registry loads it (only it: the system's arm64 plugins are not scanned).
mkdir -p "$work/no-plugins"
GST_REGISTRY="$work/arm64-registry.bin" GST_PLUGIN_SYSTEM_PATH_1_0="$work/no-plugins" \
  GST_PLUGIN_PATH="$work/arm64/usr/lib/aarch64-linux-gnu/gstreamer-1.0" \
  ORT_DYLIB_PATH="$work/arm64/usr/lib/cyclegan-edge/libonnxruntime.so.$ort_version" \
  "$runner" "$work/arm64/usr/bin/cyclegan-edge" doctor --no-self-test >"$work/arm64-doctor.txt" || true
cat "$work/arm64-doctor.txt"
grep -q "GStreamer plugin cyclegan .*ok .*arm64/usr/lib/aarch64-linux-gnu/gstreamer-1.0/libgstcyclegan.so" \
  "$work/arm64-doctor.txt" || fail "arm64: the plugin did not load"
grep -q "ONNX Runtime .*ok" "$work/arm64-doctor.txt" || fail "arm64: ONNX Runtime not found"

echo "== amd64: apt-get install $amd64"
sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$amd64"
dpkg -L cyclegan-edge >"$work/files.txt"
cd "$work"
unset GST_PLUGIN_PATH ORT_DYLIB_PATH
# Not this checkout's registry cache either: what a fresh user's GStreamer finds.
export GST_REGISTRY="$work/registry.bin" HOME="$work/home"
mkdir -p "$HOME"

gst-inspect-1.0 cyclegan >"$work/inspect.txt" || fail "gst-inspect-1.0 cyclegan failed"
# /lib is /usr/lib on merged-/usr systems, and GStreamer may name either.
grep -Eq "Filename +(/usr)?/lib/x86_64-linux-gnu/gstreamer-1.0/libgstcyclegan.so" "$work/inspect.txt" ||
  fail "gst-inspect-1.0 cyclegan: not the installed plugin"
gst-launch-1.0 -q videotestsrc num-buffers=30 ! video/x-raw,width=160,height=120 ! videoconvert ! cyclegan \
  ! videoconvert ! x264enc ! mp4mux ! filesink location="$work/launch.mp4" || fail "gst-launch-1.0 ... ! cyclegan ! ..."
frames=$(gst-launch-1.0 -v filesrc location="$work/launch.mp4" ! decodebin ! fakesink silent=false |
  grep -c 'last-message = chain' || true)
[ "$frames" = 30 ] || fail "gst-launch-1.0 wrote $frames frames, not 30"
echo "gst-launch-1.0 ... ! cyclegan ! ... wrote 30 frames"

cyclegan-edge run --config /usr/share/cyclegan-edge/configs/desktop-cpu.toml --num-frames 10 --stats false \
  | tee "$work/run.txt"
grep -q "out.mp4 plays back: 10 frames" "$work/run.txt" || fail "cyclegan-edge run with the shipped config"
cyclegan-edge doctor --no-self-test | tee "$work/doctor.txt" || true
grep -q "ONNX Runtime .*/usr/lib/cyclegan-edge/libonnxruntime.so.$ort_version (from the cyclegan-edge package)" \
  "$work/doctor.txt" || fail "doctor: not the packaged ONNX Runtime"
grep -Eq "GStreamer plugin cyclegan +ok +(/usr)?/lib/x86_64-linux-gnu/gstreamer-1.0/libgstcyclegan.so" \
  "$work/doctor.txt" || fail "doctor: not the installed plugin"
systemd-analyze verify /lib/systemd/system/cyclegan-edge@.service || fail "systemd-analyze verify"

expect_status() { # STATUS TEXT COMMAND...: fails unless COMMAND exits with STATUS and prints TEXT
  local want=$1 text=$2 got=0
  shift 2
  "$@" >"$work/out.txt" 2>&1 || got=$?
  grep -qF -- "$text" "$work/out.txt" && [ "$got" = "$want" ] ||
    { cat "$work/out.txt"; fail "$* exited $got (wanted $want, with \"$text\")"; }
}
echo "== amd64: broken setups say what is wrong"
# A service instance without its config: a configuration error, not restarted.
expect_status 78 /etc/cyclegan-edge/front.toml cyclegan-edge run --config /etc/cyclegan-edge/front.toml
printf '[input]\nframe_rate = 30\n' >"$work/typo.toml"
expect_status 78 frame_rate cyclegan-edge run --config "$work/typo.toml"
lib=/usr/lib/cyclegan-edge/libonnxruntime.so.$ort_version
sudo_if_needed mv "$lib" "$work/saved.so"
expect_status 78 "reinstall the cyclegan-edge package" cyclegan-edge run --num-frames 1 --output "$work/x.mp4"
printf 'not a library' | sudo_if_needed tee "$lib" >/dev/null
expect_status 78 "$lib" cyclegan-edge run --num-frames 1 --output "$work/x.mp4"
sudo_if_needed mv "$work/saved.so" "$lib"

echo "== amd64: apt-get purge"
sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq cyclegan-edge
left=()
while read -r f; do
  # Folders that other packages share (/usr/lib, /lib/systemd/system) stay; ours must go.
  if [ -e "$f" ] && { [ ! -d "$f" ] || [[ "$f" == *cyclegan* ]]; }; then left+=("$f"); fi
done <"$work/files.txt"
[ ${#left[@]} -eq 0 ] || fail "left after purge: ${left[*]}"
found=$(find /usr /lib /etc /var /opt -xdev -name '*cyclegan*' 2>/dev/null || true)
[ -z "$found" ] || fail "left after purge: $found"
echo "== packages: amd64 installed, used and purged cleanly; arm64 checked under qemu"
