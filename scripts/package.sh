#!/usr/bin/env bash
# Builds the Debian packages of the edge runtime with cargo-deb (metadata: edge/Cargo.toml's
# [package.metadata.deb]) and checks them with lintian:
#   target/debian/cyclegan-edge_<version>_amd64.deb   (this machine)
#   target/debian/cyclegan-edge_<version>_arm64.deb   (Jetson: the aarch64 cross build)
# Usage: scripts/package.sh [amd64|arm64|all]   (default: all)
#        scripts/package.sh --install-only         (what it needs: the toolchains, lintian, cargo-deb)
# The arm64 build is the one scripts/cross-test.sh makes (the same command): built once.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
case "$which" in
  amd64 | arm64 | all | --install-only) ;;
  *) echo "usage: $0 [amd64|arm64|all|--install-only]" >&2; exit 2 ;;
esac

if [ "$which" = amd64 ]; then scripts/install.sh --edge; else scripts/cross-install.sh; fi
export PATH="$HOME/.cargo/bin:$PATH"
sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v lintian >/dev/null 2>&1; then
  echo "== apt: installing lintian"
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lintian
fi
cargo_deb_version=3.8.0
if [ "$(cargo deb --version 2>/dev/null || true)" != "$cargo_deb_version" ]; then
  echo "== cargo: installing cargo-deb $cargo_deb_version"
  cargo install -q --locked cargo-deb --version "$cargo_deb_version"
fi
[ "$which" = --install-only ] && exit 0

ort_version=$(sed -n 's/^onnxruntime==//p' requirements-edge.txt)
version=$(cargo metadata --no-deps --format-version 1 |
  python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "cyclegan-edge"))')
# The changelog's newest entry names the package's version (lintian compares them).
grep -q "^cyclegan-edge ($version-1)" packaging/debian/changelog ||
  { echo "packaging/debian/changelog: add an entry for $version-1" >&2; exit 1; }

build() { # ARCH TRIPLE ORT_LIBRARY ORT_LICENCES_FOLDER
  local arch=$1 triple=$2 ort_lib=$3 ort_licences=$4 release target_flag=()
  if [ "$triple" = "$(rustc -vV | sed -n 's/^host: //p')" ]; then
    release=target/release
  else
    release=target/$triple/release
    target_flag=(--target "$triple")
  fi
  echo "== $arch: building the release binary and plugin"
  cargo build --release --locked "${target_flag[@]}" -p cyclegan-edge -p gst-plugin-cyclegan
  # What the package ships beside the build: ONNX Runtime with its licences, and the licences
  # of the crates linked into the binary and the plugin.
  local stage=$release/package
  rm -rf "$stage" && mkdir -p "$stage/onnxruntime"
  cp "$ort_lib" "$ort_licences/LICENSE" "$ort_licences/ThirdPartyNotices.txt" "$stage/onnxruntime/"
  {
    echo "Rust crates linked into /usr/bin/cyclegan-edge and libgstcyclegan.so (name version licence):"
    cargo tree --locked -e normal --target "$triple" -p cyclegan-edge -p gst-plugin-cyclegan --prefix none \
      --format '{p} {l}' | sed 's/ (.*)//; s/ (\*)$//' | grep -v '^cyclegan\|^gst-plugin-cyclegan' | sort -u
  } >"$stage/rust-crates.txt"
  echo "== $arch: cargo deb"
  cargo deb -p cyclegan-edge --no-build --no-strip --variant "$arch" "${target_flag[@]}" --output target/debian/
  local deb=target/debian/cyclegan-edge_${version}-1_${arch}.deb
  echo "== $arch: lintian $deb"
  lintian --fail-on error "$deb"
  echo "== $arch: $deb ($(du -h "$deb" | cut -f1))"
}

mkdir -p target/debian
if [ "$which" != arm64 ]; then
  # The wheel keeps its licences one folder above the library.
  lib=$(ls .venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so."$ort_version")
  build amd64 x86_64-unknown-linux-gnu "$lib" "$(dirname "$lib")/.."
fi
if [ "$which" != amd64 ]; then
  ort=target/aarch64-unknown-linux-gnu/onnxruntime
  build arm64 aarch64-unknown-linux-gnu "$ort/libonnxruntime.so.$ort_version" "$ort"
fi
