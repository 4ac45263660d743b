use std::path::PathBuf;

/// Errors of the runtime. Messages name the file, property or flag at fault and what to do.
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
         (./scripts/install.sh does), reinstall the cyclegan-edge package, or set ORT_DYLIB_PATH to libonnxruntime.so.<version>"
    )]
    RuntimeMissing { looked: String },
    #[error("ONNX Runtime library {path}: {reason}")]
    RuntimeLoad { path: PathBuf, reason: String },
    #[error("ONNX Runtime")]
    Ort(#[from] ort::Error),
    #[error("ONNX Runtime: {0}")]
    Inference(String),
    #[error("backend `{0}` is not available: {1}")]
    BackendUnavailable(String, String),
    #[error("{0}")]
    Invalid(String),
    /// A batch of several streams' frames failed; each of its streams gets this.
    #[error("the shared model failed on a batch of {frames} frames: {reason}")]
    Shared { frames: usize, reason: String },
    /// A backend outside this crate (TensorRT) failed; its error is the source.
    #[error(transparent)]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error and its causes on one line (`a: b: c`), as `anyhow`'s `{:#}` prints them: for
/// messages that are text (the element's errors, `doctor`'s checks).
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
