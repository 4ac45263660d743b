#!/usr/bin/env bash
# Installs what building for a Jetson (aarch64) on a Debian/Ubuntu x86_64 machine needs: Debian's
# cross toolchain, qemu to run what it builds, the arm64 GStreamer packages and tools, the Rust
# target, cargo-nextest, and an aarch64 ONNX Runtime (from PyPI's wheel, with its licences) for
# running the tests under qemu and for the arm64 package. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
export PATH="$HOME/.cargo/bin:$PATH"

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
# With a second architecture added (scripts/cross-install.sh) a bare name can be ambiguous.
installed() { dpkg -s "$1" >/dev/null 2>&1 || dpkg -s "$1:$(dpkg --print-architecture)" >/dev/null 2>&1; }

if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "== dpkg: adding the arm64 architecture"
  sudo_if_needed dpkg --add-architecture arm64
  sudo_if_needed apt-get update -qq
fi
apt_packages=(gcc-aarch64-linux-gnu g++-aarch64-linux-gnu file pkgconf:arm64 libc6-dev:arm64
  libstdc++6:arm64 libgstreamer1.0-dev:arm64 liborc-0.4-dev:arm64 gstreamer1.0-plugins-base:arm64
  gstreamer1.0-plugins-good:arm64 gstreamer1.0-plugins-ugly:arm64 gstreamer1.0-libav:arm64)
missing=()
for p in "${apt_packages[@]}"; do
  installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== apt: installing ${missing[*]}"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# ONNX Runtime reads the CPU's description from /proc/cpuinfo and crashes on the host's x86 one:
# qemu 7.2 (bookworm) passes that through, qemu 10 (bookworm-backports) emulates an aarch64 one.
qemu_major=$(qemu-aarch64-static --version 2>/dev/null | sed -n 's/.*version \([0-9]*\)\..*/\1/p' || true)
if [ "${qemu_major:-0}" -lt 10 ]; then
  release=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  if [ "$release" = bookworm ]; then
    echo "== apt: qemu-user-static from bookworm-backports"
    echo "deb http://deb.debian.org/debian bookworm-backports main" |
      sudo_if_needed tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
    sudo_if_needed apt-get update -qq
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports qemu-user-static
  else
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static
    qemu_major=$(qemu-aarch64-static --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p')
    if [ "${qemu_major:-0}" -lt 10 ]; then
      echo "warning: qemu $qemu_major: ONNX Runtime may crash under it (tested with qemu 10)" >&2
    fi
  fi
fi

# libgstreamer-plugins-base1.0-dev is not co-installable across architectures (installing the
# arm64 one removes the native one the desktop build needs): unpack only its arm64 library folder.
if [ ! -f /usr/lib/aarch64-linux-gnu/pkgconfig/gstreamer-video-1.0.pc ]; then
  echo "== apt: unpacking libgstreamer-plugins-base1.0-dev:arm64's libraries"
  deb_dir=$(mktemp -d)
  chmod 777 "$deb_dir"
  (cd "$deb_dir" && apt-get download -qq libgstreamer-plugins-base1.0-dev:arm64)
  dpkg-deb --fsys-tarfile "$deb_dir"/*.deb | sudo_if_needed tar -x -C / ./usr/lib/aarch64-linux-gnu
  rm -rf "$deb_dir"
fi

# GStreamer's tools for arm64 (gst-inspect-1.0, gst-launch-1.0), for the plugin's tests under qemu:
# not co-installable with the native ones either, so unpacked into a folder of their own.
tools_dir=target/aarch64-unknown-linux-gnu/gstreamer-tools
if [ ! -x "$tools_dir/usr/bin/gst-launch-1.0" ]; then
  echo "== apt: unpacking gstreamer1.0-tools:arm64 into $tools_dir"
  deb_dir=$(mktemp -d)
  chmod 777 "$deb_dir"
  (cd "$deb_dir" && apt-get download -qq gstreamer1.0-tools:arm64)
  mkdir -p "$tools_dir"
  dpkg-deb -x "$deb_dir"/*.deb "$tools_dir"
  rm -rf "$deb_dir"
fi

# nextest runs the emulated tests of every test binary in one pool of processes (scripts/cross-test.sh).
nextest_version=0.9.143
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "== cargo: installing cargo-nextest $nextest_version"
  cargo install -q --locked cargo-nextest --version "$nextest_version"
fi

rustup target list --installed | grep -qx aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu

# The same ONNX Runtime release as the desktop's, as the aarch64 library the CPU backend loads.
ort_version=$(sed -n 's/^onnxruntime==//p' requirements-edge.txt)
ort_dir=target/aarch64-unknown-linux-gnu/onnxruntime
if [ ! -f "$ort_dir/libonnxruntime.so.$ort_version" ] || [ ! -f "$ort_dir/ThirdPartyNotices.txt" ]; then
  echo "== pip: fetching ONNX Runtime $ort_version for aarch64"
  wheel_dir=$(mktemp -d)
  .venv/bin/pip download -q --no-cache-dir --no-deps --only-binary=:all: --platform manylinux_2_28_aarch64 \
    --python-version 3.11 "onnxruntime==$ort_version" -d "$wheel_dir"
  mkdir -p "$ort_dir"
  .venv/bin/python - "$wheel_dir" "$ort_dir" "$ort_version" <<'PY'
import glob, sys, zipfile
wheel_dir, out, version = sys.argv[1:]
(wheel,) = glob.glob(f"{wheel_dir}/*.whl")
with zipfile.ZipFile(wheel) as z:
    # The licences go into the arm64 Debian package with the library (scripts/package.sh).
    for name in ["LICENSE", "ThirdPartyNotices.txt"]:
        with open(f"{out}/{name}", "wb") as f:
            f.write(z.read(f"onnxruntime/{name}"))
    with open(f"{out}/libonnxruntime.so.{version}.partial", "wb") as f:
        f.write(z.read(f"onnxruntime/capi/libonnxruntime.so.{version}"))
PY
  mv "$ort_dir/libonnxruntime.so.$ort_version.partial" "$ort_dir/libonnxruntime.so.$ort_version"
  rm -rf "$wheel_dir"
fi
echo "== ready for aarch64: $(aarch64-linux-gnu-gcc --version | head -1), $(qemu-aarch64-static --version | head -1)"
