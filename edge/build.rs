//! Compiles the TensorRT shim (csrc/tensorrt_shim.cpp) against the first TensorRT headers found.
//! Without headers csrc/tensorrt_absent.c stands in, and the TensorRT backend says at run time
//! that this build has none and where headers were looked for.
use std::path::{Path, PathBuf};

fn header_dirs(target_arch: &str, workspace: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os("TENSORRT_INCLUDE_DIR") {
        dirs.push(PathBuf::from(dir));
    }
    // JetPack and NVIDIA's Debian packages put them in the multiarch folder; the tarball in
    // /usr/local. Only the target's own architecture counts when cross-compiling.
    dirs.push(PathBuf::from(format!("/usr/include/{target_arch}-linux-gnu")));
    dirs.push(PathBuf::from("/usr/include"));
    dirs.push(PathBuf::from("/usr/local/TensorRT/include"));
    dirs.push(PathBuf::from("/usr/local/tensorrt/include"));
    // scripts/tensorrt-headers.sh (run by scripts/install.sh): TensorRT 11.4's headers.
    dirs.push(workspace.join("target/tensorrt-headers/include"));
    dirs
}

fn main() {
    println!("cargo::rerun-if-changed=csrc");
    println!("cargo::rerun-if-env-changed=TENSORRT_INCLUDE_DIR");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest.parent().expect("edge/ lives in the workspace").to_path_buf();
    let target_arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let dirs = header_dirs(&target_arch, &workspace);
    for dir in &dirs {
        println!("cargo::rerun-if-changed={}", dir.join("NvInferVersion.h").display());
    }
    let looked = dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ");
    let found = dirs.iter().find(|d| d.join("NvInfer.h").is_file() && d.join("NvOnnxParser.h").is_file());
    if std::env::var_os("TENSORRT_INCLUDE_DIR").is_some() && found != dirs.first() {
        panic!(
            "TENSORRT_INCLUDE_DIR={}: no NvInfer.h and NvOnnxParser.h there. Point it at TensorRT's include folder \
             (or unset it to use {looked})",
            dirs[0].display()
        );
    }
    let Some(include) = found else {
        cc::Build::new().file(manifest.join("csrc/tensorrt_absent.c")).compile("cyclegan_tensorrt_shim");
        println!("cargo::rustc-env=CYCLEGAN_TENSORRT_HEADERS=none (looked in {looked})");
        return;
    };
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .file(manifest.join("csrc/tensorrt_shim.cpp"))
        // Ours first: the stub stands in for the CUDA toolkit's cuda_runtime_api.h.
        .include(manifest.join("csrc/stub"))
        .flag("-isystem")
        .flag(include.to_str().expect("a UTF-8 include path"))
        .flag_if_supported("-Wno-deprecated-declarations")
        .compile("cyclegan_tensorrt_shim");
    println!("cargo::rustc-env=CYCLEGAN_TENSORRT_HEADERS={}", include.display());
}
