use std::path::PathBuf;

/// Errors of the edge runtime library. Messages name the file, property or flag at fault and
/// what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("model {path}: {reason}")]
    BadModel { path: String, reason: String },
    /// A model file that cannot be read or breaks the generator contract.
    #[error("model {path}")]
    Model {
        path: String,
        #[source]
        source: Box<cyclegan_onnx::Error>,
    },
    #[error(
        "ONNX Runtime library not found (looked for {looked}). Install it with `pip install onnxruntime` \
         (./scripts/install.sh does) or set ORT_DYLIB_PATH to libonnxruntime.so.<version>"
    )]
    RuntimeMissing { looked: String },
    #[error("ONNX Runtime library {path}: {reason}")]
    RuntimeLoad { path: PathBuf, reason: String },
    #[error("ONNX Runtime: {0}")]
    Inference(String),
    #[error(
        "TensorRT not found (looked in {looked}){}. JetPack ships it; on a desktop install NVIDIA's \
         libnvinfer and libnvonnxparser packages or `pip install tensorrt-cu13-libs` into .venv, or give the \
         library with --tensorrt-lib",
        if partial.is_empty() { String::new() } else { format!("; found only {partial}") }
    )]
    TensorrtMissing { looked: String, partial: String },
    #[error("TensorRT library {path}: {reason}")]
    TensorrtLoad { path: PathBuf, reason: String },
    #[error("TensorRT: {0}")]
    Tensorrt(String),
    #[error("CUDA: {0}")]
    Cuda(String),
    #[error("backend `{0}` is not available: {1}")]
    BackendUnavailable(String, String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Pipeline(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error and its causes on one line (`a: b: c`), as `anyhow`'s `{:#}` prints them: for the
/// element's error messages and `doctor`'s checks, which are text.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

impl From<ort::Error> for Error {
    fn from(e: ort::Error) -> Self {
        Error::Inference(e.to_string())
    }
}
