//! Errors of fetching and unpacking. Each names the address or file at fault and what to do.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no {what} is called `{name}`; known: {known}")]
    Unknown { what: &'static str, name: String, known: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{url}: the server answered {status}{hint}")]
    Status { url: String, status: u16, hint: &'static str },
    #[error("{url}: {source}{hint}")]
    Http {
        url: String,
        #[source]
        source: ureq::Error,
        hint: &'static str,
    },
    #[error(
        "{url}: gave up after {attempts} attempts ({last}); what arrived is kept in {part} and the next try resumes from it"
    )]
    GaveUp { url: String, attempts: u32, last: String, part: PathBuf },
    #[error("{url}: its SHA-256 is {actual}, not the {expected} asked for (--sha256); the download was removed")]
    Sha256Mismatch { url: String, expected: String, actual: String },
    #[error("{path}: {context}")]
    Io {
        path: PathBuf,
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Archive { path: PathBuf, message: String },
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), context: context.into(), source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
