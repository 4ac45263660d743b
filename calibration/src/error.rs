/// Errors of the calibration library; messages name the file, flag or layer at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Model(String),
    #[error("{0}")]
    Images(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Runtime(#[from] cyclegan_runtime::Error),
    /// An ONNX file given to `flag` (its path is in the source).
    #[error("{flag}")]
    Onnx {
        flag: &'static str,
        #[source]
        source: cyclegan_onnx::Error,
    },
    #[error("{path}: {message}")]
    Io { path: std::path::PathBuf, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<cyclegan_onnx::Error> for Error {
    fn from(source: cyclegan_onnx::Error) -> Self {
        Error::Onnx { flag: "--model", source }
    }
}
