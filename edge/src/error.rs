use std::path::PathBuf;

/// Errors of the edge runtime library. Messages name the file, property or flag at fault and
/// what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Model, frames, pre/post-processing and the CPU backend (`cyclegan-runtime`).
    #[error(transparent)]
    Runtime(#[from] cyclegan_runtime::Error),
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
    /// A CUDA condition with no lower cause (no driver, no such GPU).
    #[error("CUDA: {0}")]
    Cuda(String),
    /// A CUDA driver call failed while doing `what`.
    #[error("CUDA: {what}")]
    Driver {
        what: String,
        #[source]
        source: cudarc::driver::DriverError,
    },
    /// NVRTC or the frame kernels.
    #[error(transparent)]
    Kernels(#[from] crate::backend::cuda::CudaError),
    #[error("backend `{0}` is not available: {1}")]
    BackendUnavailable(String, String),
    #[error("{0}")]
    Invalid(String),
    /// What the configuration needs is not on this machine: a GStreamer element, a backend's library.
    #[error("{0}")]
    Setup(String),
    /// A camera or stream that is not there (yet), or went away: waiting and trying again may help.
    #[error("{0}")]
    InputUnavailable(String),
    #[error("{0}")]
    Pipeline(String),
    /// Fetching a published generator.
    #[error(transparent)]
    Fetch(#[from] cyclegan_hub::Error),
}

/// What kind of failure ended a run, for the caller's exit status: a service manager restarts
/// a run whose input went away, not one whose configuration is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The configuration, a flag, the model or the installation: nothing changes by retrying.
    Config,
    /// The camera or stream is not there yet or went away: retrying later may work.
    InputUnavailable,
    /// Anything else.
    Other,
}

impl Error {
    pub fn failure(&self) -> Failure {
        use cyclegan_runtime::Error as Runtime;
        match self {
            Self::InputUnavailable(_) => Failure::InputUnavailable,
            // The network may come back; a wrong name or address will not.
            Self::Fetch(cyclegan_hub::Error::GaveUp { .. } | cyclegan_hub::Error::Http { .. }) => {
                Failure::InputUnavailable
            }
            Self::Fetch(_) => Failure::Config,
            Self::Invalid(_)
            | Self::Setup(_)
            | Self::TensorrtMissing { .. }
            | Self::TensorrtLoad { .. }
            | Self::BackendUnavailable(..) => Failure::Config,
            Self::Runtime(
                Runtime::BadModel { .. }
                | Runtime::Model { .. }
                | Runtime::RuntimeMissing { .. }
                | Runtime::RuntimeLoad { .. }
                | Runtime::BackendUnavailable(..)
                | Runtime::Invalid(_),
            ) => Failure::Config,
            _ => Failure::Other,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub use cyclegan_runtime::chain;

/// The TensorRT backend's errors, through the runtime's `Backend` trait.
impl From<Error> for cyclegan_runtime::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Runtime(inner) => inner,
            other => cyclegan_runtime::Error::Backend(Box::new(other)),
        }
    }
}
