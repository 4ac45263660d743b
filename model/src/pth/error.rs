//! What can be wrong with a PyTorch checkpoint being imported.

/// Why a saved generator (a `.pth`, or an ONNX file of `torch.onnx.export`) cannot be imported. Problems of the file's own structure are leaves (their
/// text says what is wrong); failures of reading it keep their cause.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read the file")]
    Read(#[source] std::io::Error),
    #[error("corrupt torch.save zip")]
    Archive(#[source] zip::result::ZipError),
    #[error("zip entry {name}")]
    Entry {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("not a readable ONNX model")]
    Onnx(#[source] cyclegan_onnx::Error),
    /// The pickle stream or the objects in it are not a state dict of tensors.
    #[error("{0}")]
    Format(String),
    /// One part of a legacy file (`what`) is broken.
    #[error("{what}")]
    Legacy {
        what: String,
        #[source]
        source: Box<ImportError>,
    },
    /// The tensors are not a ResNet generator's, or not the one the flags describe.
    #[error("{0}")]
    Generator(String),
}

impl From<&str> for ImportError {
    fn from(message: &str) -> Self {
        Self::Format(message.into())
    }
}

impl From<String> for ImportError {
    fn from(message: String) -> Self {
        Self::Format(message)
    }
}

pub type Result<T> = std::result::Result<T, ImportError>;
