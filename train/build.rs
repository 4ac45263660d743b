//! Makes the binaries find libtorch without LD_LIBRARY_PATH, and keeps libtorch_cuda linked so
//! that CUDA devices are visible when the wheel ships it.
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    // The linker drops libtorch_cuda (nothing references it by symbol); without it
    // tch::Cuda::is_available() is false even on a GPU machine.
    if Path::new(&lib).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
