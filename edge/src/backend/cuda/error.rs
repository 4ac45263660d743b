use std::path::PathBuf;

/// Errors of the CUDA backend. Messages name the library or source at fault and what to do.
#[derive(Debug, thiserror::Error)]
pub enum CudaError {
    #[error(
        "NVRTC (the CUDA runtime compiler) not found (looked for {looked}). Install the CUDA toolkit's NVRTC \
         or `pip install nvidia-cuda-nvrtc` into the project's .venv, or set CYCLEGAN_NVRTC to libnvrtc.so.<version>"
    )]
    NvrtcMissing { looked: String },
    #[error(
        "no NVRTC found here compiles the kernels for this GPU ({gpu}, driver CUDA {driver}): {tried}. Install the \
         NVRTC of the GPU's CUDA release (JetPack's cuda-nvrtc, or `pip install nvidia-cuda-nvrtc-cu12` for an older \
         GPU), or set CYCLEGAN_NVRTC to it; frames are converted on the CPU meanwhile"
    )]
    NoNvrtcFor { gpu: String, driver: String, tried: String },
    #[error("NVRTC library {path}: {reason}")]
    NvrtcLoad { path: PathBuf, reason: String },
    #[error("NVRTC could not compile {name} for {arch}: {log}")]
    Compile { name: String, arch: String, log: String },
    #[error("CUDA")]
    Driver(#[from] cudarc::driver::DriverError),
    #[error("{0}")]
    Invalid(String),
}
