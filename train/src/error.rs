//! Errors of the training library. Each names the file or setting at fault and what to do.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("config {file}: {message}")]
    Config { file: PathBuf, message: String },
    #[error("invalid setting {key}: {message}")]
    InvalidValue { key: String, message: String },
    #[error("dataset: {0}")]
    Dataset(String),
    #[error("image {path}: {message}")]
    Image { path: PathBuf, message: String },
    #[error("checkpoint {path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
    #[error("device {device}: {message}")]
    Device { device: String, message: String },
    /// Checkpoints, `.pth` import and the float ONNX export (`cyclegan_model`).
    #[error(transparent)]
    Model(#[from] cyclegan_model::Error),
    #[error("export: {0}")]
    Export(String),
    #[error(transparent)]
    Onnx(#[from] cyclegan_onnx::Error),
    /// Calibration and the Q/DQ writer (`cyclegan_calibration`), which `qat` uses.
    #[error(transparent)]
    Calibration(#[from] cyclegan_calibration::Error),
    /// Measuring temporal consistency (`cyclegan_runtime::motion`).
    #[error(transparent)]
    Motion(#[from] cyclegan_runtime::Error),
    /// A data-parallel run: its environment, rendezvous or collectives.
    #[error("data-parallel run: {0}")]
    Distributed(String),
    /// A collective that failed because another rank did (the message names it).
    #[error("data-parallel run: {0}")]
    Collective(String),
    #[error("libtorch")]
    Torch(#[from] tch::TchError),
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io { context: context.into(), source }
    }

    pub fn checkpoint(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Checkpoint { path: path.into(), message: message.into() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
