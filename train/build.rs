//! Makes the binaries find libtorch without LD_LIBRARY_PATH, keeps libtorch_cuda linked so that
//! CUDA devices are visible when the wheel ships it, and compiles the c10d shim (csrc/) against
//! the wheel's headers: Gloo always, NCCL where CUDA's and NCCL's headers are found, and the
//! fused gradient unscaling of mixed precision (csrc/amp.cpp), which tch does not expose.
use std::path::{Path, PathBuf};

#[path = "build/cuda_headers.rs"]
mod cuda_headers;

use cuda_headers::find;

fn env_dir(name: &str) -> Option<PathBuf> {
    println!("cargo:rerun-if-env-changed={name}");
    std::env::var_os(name).map(PathBuf::from)
}

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-changed=csrc");
    println!("cargo:rerun-if-changed=build");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        panic!(
            "torch-sys did not say where libtorch is (DEP_TCH_LIBTORCH_LIB): run scripts/install.sh, which sets LIBTORCH"
        );
    };
    let lib = PathBuf::from(lib);
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    // The linker drops libtorch_cuda (nothing references it by symbol); without it
    // tch::Cuda::is_available() is false even on a GPU machine.
    let cuda = lib.join("libtorch_cuda.so").exists();
    if cuda {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }

    // The wheel's real folder (.venv/libtorch is a link to it), beside its nvidia/ packages.
    let torch = lib.canonicalize().unwrap_or(lib.clone());
    let torch = torch.parent().expect("libtorch's lib folder has a parent").to_path_buf();
    let gloo_dirs: Vec<PathBuf> =
        env_dir("GLOO_INCLUDE_DIR").into_iter().chain([PathBuf::from("/usr/include")]).collect();
    let Some(gloo) = find(&gloo_dirs, "gloo/config.h") else {
        panic!(
            "the c10d shim (train/csrc) needs Gloo's headers, which PyTorch's wheel does not ship: install Debian's \
             or Ubuntu's libgloo-dev (scripts/install.sh does), or set GLOO_INCLUDE_DIR to a folder holding gloo/"
        );
    };
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let csrc = manifest.join("csrc");
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++17")
        .define("USE_C10D_GLOO", None)
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .define("GLOG_USE_GLOG_EXPORT", None)
        .flag("-isystem")
        .flag(torch.join("include").to_str().expect("a UTF-8 path"))
        .flag("-isystem")
        .flag(torch.join("include/torch/csrc/api/include").to_str().expect("a UTF-8 path"))
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-deprecated-declarations")
        .file(csrc.join("c10d.cpp"))
        .file(csrc.join("amp.cpp"));
    // The compiler's own folder needs no flag (and -isystem /usr/include breaks its C++ headers).
    if gloo != Path::new("/usr/include") {
        build.flag("-isystem").flag(gloo.to_str().expect("a UTF-8 path"));
    }
    let nvidia = torch.parent().map(|p| p.join("nvidia")).unwrap_or_default();
    let toolkits: Vec<PathBuf> = env_dir("CUDA_HOME")
        .map(|d| d.join("include"))
        .into_iter()
        .chain([PathBuf::from("/usr/local/cuda/include")])
        .collect();
    let includes =
        cuda_headers::nccl_includes(&nvidia, env_dir("CUDA_INCLUDE_DIR"), &toolkits, env_dir("NCCL_INCLUDE_DIR"));
    match includes.filter(|_| cuda) {
        Some(dirs) => {
            build.define("USE_C10D_NCCL", None).define("USE_CUDA", None).file(csrc.join("nccl.cpp"));
            for dir in dirs {
                build.flag("-isystem").flag(dir.to_str().expect("a UTF-8 path"));
            }
        }
        None => {
            build.file(csrc.join("nccl_absent.cpp"));
        }
    }
    build.compile("cyclegan_c10d");
}
