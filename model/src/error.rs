//! Errors of the model crate. Each names the file at fault and what to do.
use std::path::PathBuf;

use crate::pth::ImportError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("checkpoint {path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
    #[error("import {path}")]
    Import {
        path: PathBuf,
        #[source]
        source: ImportError,
    },
    #[error("export: {0}")]
    Export(String),
    #[error(transparent)]
    Onnx(#[from] cyclegan_onnx::Error),
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
