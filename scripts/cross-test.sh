#!/usr/bin/env bash
# The Jetson (aarch64) build and its tests under qemu.
#   scripts/cross-test.sh build   cross-builds the release binary, plugin and the test binaries of
#                                 the tests in scripts/aarch64/emulated-tests.txt
#   scripts/cross-test.sh test    runs those tests emulated, then the default pipeline (bundled
#                                 model and clip) for 12 frames, and decodes its MP4 back
#   scripts/cross-test.sh         both
# The build is the release profile: what the arm64 package ships (scripts/package.sh reuses it).
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
case "$what" in
  build | test | all) ;;
  *) echo "usage: $0 [build|test]" >&2; exit 2 ;;
esac
target=aarch64-unknown-linux-gnu
list=scripts/aarch64/emulated-tests.txt

# The list's lines as "PACKAGE TARGET TEST"; a line without its reason is refused.
entries=()
while IFS= read -r line; do
  [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
  read -r package test_target name rest <<<"$line"
  reason=${rest#\#}
  if [ -z "${name:-}" ] || [ "${rest:0:1}" != "#" ] || [ -z "${reason// /}" ]; then
    echo "$list: '$line': want PACKAGE TARGET TEST  # why it runs emulated" >&2
    exit 2
  fi
  entries+=("$package $test_target $name")
done <"$list"
# One nextest invocation over every package and target listed: the same feature set for the build
# and the run (which then compiles nothing), and one pool of processes for all of them, so that
# both cores stay busy while a single long test runs.
packages=() targets=() names=() filters=()
for entry in "${entries[@]}"; do
  read -r package test_target name <<<"$entry"
  [[ " ${packages[*]} " == *" -p $package "* ]] || packages+=(-p "$package")
  if [ "$test_target" = lib ]; then
    flag=(--lib) binary="kind(lib)"
  else
    flag=(--test "$test_target") binary="kind(test) & binary(=$test_target)"
  fi
  [[ " ${targets[*]} " == *" ${flag[*]} "* ]] || targets+=("${flag[@]}")
  names+=("$name")
  filters+=("(package(=$package) & $binary & test(=$name))")
done
filter=$(printf ' | %s' "${filters[@]}")
filter=${filter:3}
# The package's binary and plugin are among them (tests start the binary and load the plugin).
nextest=(cargo nextest run --release --locked --build-jobs 2 --target "$target" "${packages[@]}" "${targets[@]}")

if [ "$what" != test ]; then
  scripts/cross-install.sh
  export PATH="$HOME/.cargo/bin:$PATH"
  cargo build --release --locked --target "$target" -p cyclegan-edge -p gst-plugin-cyclegan
  "${nextest[@]}" --no-run
  file target/$target/release/cyclegan-edge target/$target/release/libgstcyclegan.so | sed 's/, BuildID.*//'
fi
[ "$what" = build ] && exit 0

export PATH="$HOME/.cargo/bin:$PATH"
ort_version=$(sed -n 's/^onnxruntime==//p' requirements-edge.txt)
export ORT_DYLIB_PATH="$PWD/target/$target/onnxruntime/libonnxruntime.so.$ort_version"
# Tests start our binaries and GStreamer's tools themselves: through the same runner cargo uses
# (no binfmt here), the tools from the arm64 package scripts/cross-install.sh unpacked.
export CYCLEGAN_TEST_RUNNER="$PWD/scripts/aarch64/runner"
export CYCLEGAN_TEST_GST_TOOLS="$PWD/target/$target/gstreamer-tools/usr/bin"
log=target/$target/emulated-tests.log
"${nextest[@]}" --color never --test-threads 2 --no-fail-fast --status-level pass -E "$filter" 2>&1 | tee "$log"
# Every listed test ran and passed (a renamed test would otherwise silently stop running here).
missing=()
for name in "${names[@]}"; do
  grep -E '^ *PASS ' "$log" | sed 's/.* //' | grep -qxF -- "$name" || missing+=("$name")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "$list names tests that did not run and pass under qemu (renamed, removed or ignored?): ${missing[*]}" >&2
  exit 1
fi

out=target/$target/demo.mp4
scripts/aarch64/runner target/$target/release/cyclegan-edge run --config configs/edge/desktop-cpu.toml \
  --num-frames 12 --output "$out" --stats false | tee target/$target/demo.log
grep -q "plays back: 12 frames" target/$target/demo.log
echo "== aarch64: ${#names[@]} tests passed under qemu ($list); $out written under emulation"
