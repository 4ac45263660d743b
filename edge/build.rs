//! Compiles the TensorRT shim (csrc/tensorrt_shim.cpp) against the first TensorRT 10+ headers
//! found (build/tensorrt_headers.rs). Without any, csrc/tensorrt_absent.c stands in, and the
//! TensorRT backend says at run time that this build has none, what was found and where it looked.
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "build/tensorrt_headers.rs"]
mod tensorrt_headers;

use tensorrt_headers::Choice;

fn header_dirs(target_arch: &str, workspace: &Path) -> Vec<PathBuf> {
    // JetPack and NVIDIA's Debian packages put them in the multiarch folder; the tarball in
    // /usr/local. Only the target's own architecture counts when cross-compiling.
    vec![
        PathBuf::from(format!("/usr/include/{target_arch}-linux-gnu")),
        PathBuf::from("/usr/include"),
        PathBuf::from("/usr/local/TensorRT/include"),
        PathBuf::from("/usr/local/tensorrt/include"),
        // scripts/tensorrt-headers.sh (run by scripts/install.sh): TensorRT 11.4's headers.
        workspace.join("target/tensorrt-headers/include"),
    ]
}

/// The folders the C++ compiler searches by itself (none if it cannot say).
fn compiler_include_dirs(build: &cc::Build) -> Vec<PathBuf> {
    let compiler = build.get_compiler();
    let report = Command::new(compiler.path())
        .args(compiler.args())
        .args(["-xc++", "-E", "-v", "/dev/null"])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stderr).into_owned())
        .unwrap_or_default();
    tensorrt_headers::default_include_dirs(&report)
}

fn main() {
    println!("cargo::rerun-if-changed=csrc");
    println!("cargo::rerun-if-changed=build");
    println!("cargo::rerun-if-env-changed=TENSORRT_INCLUDE_DIR");
    // The loader checks libraries against the same oldest major (backend/tensorrt/library.rs).
    println!("cargo::rustc-env=CYCLEGAN_TENSORRT_OLDEST_MAJOR={}", tensorrt_headers::OLDEST_MAJOR);
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest.parent().expect("edge/ lives in the workspace").to_path_buf();
    let target_arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let explicit = std::env::var_os("TENSORRT_INCLUDE_DIR").map(PathBuf::from);
    let dirs = header_dirs(&target_arch, &workspace);
    // Only files that exist: cargo takes a missing one as changed and would rebuild the crate, and
    // everything above it, on every build. Headers installed later need `cargo clean -p cyclegan-edge`.
    for version in explicit.iter().chain(&dirs).map(|d| d.join("NvInferVersion.h")).filter(|f| f.is_file()) {
        println!("cargo::rerun-if-changed={}", version.display());
    }
    let choice = tensorrt_headers::choose(explicit.as_deref(), &dirs).unwrap_or_else(|message| panic!("{message}"));
    let (dir, headers, skipped) = match choice {
        Choice::StandIn { why, skipped } => {
            for s in &skipped {
                println!("cargo::warning=TensorRT backend left out: {s} (set TENSORRT_INCLUDE_DIR to 10+ headers)");
            }
            cc::Build::new().file(manifest.join("csrc/tensorrt_absent.c")).compile("cyclegan_tensorrt_shim");
            println!("cargo::rustc-env=CYCLEGAN_TENSORRT_HEADERS={why}");
            return;
        }
        Choice::Use { dir, version, skipped } => {
            let headers = format!("TensorRT {version} ({})", dir.display());
            (dir, headers, skipped)
        }
    };
    for s in &skipped {
        println!("cargo::warning=skipped {s}; using {headers}");
    }
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++17")
        .file(manifest.join("csrc/tensorrt_shim.cpp"))
        // Ours first: the stub stands in for the CUDA toolkit's cuda_runtime_api.h.
        .include(manifest.join("csrc/stub"))
        .flag_if_supported("-Wno-deprecated-declarations");
    if tensorrt_headers::needs_include_flag(&dir, &compiler_include_dirs(&build)) {
        build.flag("-isystem").flag(dir.to_str().expect("a UTF-8 include path"));
    }
    build.compile("cyclegan_tensorrt_shim");
    println!("cargo::rustc-env=CYCLEGAN_TENSORRT_HEADERS={headers}");
}
