//! Inference backends: run a generator on a batch of tensors at an inference size.
pub mod cuda;
pub mod shared;
pub mod tensorrt;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

pub use cyclegan_runtime::backend::Backend;
pub use cyclegan_runtime::cpu::{CpuBackend, CpuOptions};
pub use cyclegan_runtime::onnxruntime::{Candidate, find_onnxruntime, locate_onnxruntime, onnxruntime_candidates};
pub use tensorrt::{TensorrtBackend, TensorrtOptions};

use crate::model::Model;
use crate::{Error, Result};

/// A `libloading` error with the loader's own reason (its Display says only "dlopen failed").
pub(crate) fn dl_error(e: &libloading::Error) -> String {
    match std::error::Error::source(e) {
        Some(source) => format!("{e}: {source}"),
        None => e.to_string(),
    }
}

/// Which backend the `backend` property / `--backend` flag asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// TensorRT where this build and machine have it, else the CPU.
    #[default]
    Auto,
    Cpu,
    Tensorrt,
}

impl FromStr for BackendKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "tensorrt" => Ok(Self::Tensorrt),
            _ => Err(Error::Invalid(format!("backend {s:?}: use auto, cpu or tensorrt"))),
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Cpu => "cpu",
            Self::Tensorrt => "tensorrt",
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct BackendOptions {
    /// CPU threads for inference; 0 lets the engine decide (all cores).
    pub threads: usize,
    /// libonnxruntime.so to load; default: ORT_DYLIB_PATH, then the usual places.
    pub onnxruntime: Option<PathBuf>,
    pub tensorrt: TensorrtOptions,
}

impl BackendOptions {
    pub fn cpu(&self) -> CpuOptions {
        CpuOptions { threads: self.threads, onnxruntime: self.onnxruntime.clone() }
    }
}

/// A backend, and why `auto` chose it when it fell back.
pub struct Opened {
    pub backend: Box<dyn Backend>,
    pub note: Option<String>,
    /// What it runs on: `Cpu` or `Tensorrt` (what `auto` resolved to).
    pub kind: BackendKind,
}

/// Opens `model` on the backend `kind` asks for; `auto` tries TensorRT where there is a CUDA
/// driver and falls back to the CPU, saying why.
pub fn open(kind: BackendKind, model: &Model, options: &BackendOptions) -> Result<Opened> {
    let cpu = || -> Result<Box<dyn Backend>> { Ok(Box::new(CpuBackend::open(model, &options.cpu())?)) };
    match kind {
        BackendKind::Cpu => Ok(Opened { backend: cpu()?, note: None, kind: BackendKind::Cpu }),
        BackendKind::Tensorrt => Ok(Opened {
            backend: Box::new(TensorrtBackend::open(model, &options.tensorrt)?),
            note: None,
            kind: BackendKind::Tensorrt,
        }),
        // Without a GPU driver there is nothing to say: the CPU is the only choice.
        BackendKind::Auto if !cuda::device::driver_present() => {
            Ok(Opened { backend: cpu()?, note: None, kind: BackendKind::Cpu })
        }
        BackendKind::Auto => match TensorrtBackend::open(model, &options.tensorrt) {
            Ok(backend) => Ok(Opened { backend: Box::new(backend), note: None, kind: BackendKind::Tensorrt }),
            Err(e) => Ok(Opened {
                backend: cpu()?,
                note: Some(format!("backend auto: using the CPU, TensorRT is not usable: {e}")),
                kind: BackendKind::Cpu,
            }),
        },
    }
}
