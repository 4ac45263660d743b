//! Inference backends: run a generator on a batch of tensors at an inference size.
mod cpu;
mod runtime;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

pub use cpu::CpuBackend;
pub use runtime::{find_onnxruntime, onnxruntime_candidates};

use crate::model::Model;
use crate::{Error, Result};

/// A generator ready to run. Input and output are `[N,3,H,W]` float tensors in [-1,1].
pub trait Backend: Send {
    /// Short description for logs and statistics (`cpu (ONNX Runtime 1.31.1, 2 threads)`).
    fn describe(&self) -> String;

    /// Translates `input` of `shape` into `output` (resized to the same length).
    fn run(&mut self, input: &[f32], shape: [usize; 4], output: &mut Vec<f32>) -> Result<()>;
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
}

/// Opens `model` on the backend `kind` asks for.
pub fn open(kind: BackendKind, model: &Model, options: &BackendOptions) -> Result<Box<dyn Backend>> {
    match kind {
        BackendKind::Auto | BackendKind::Cpu => Ok(Box::new(CpuBackend::open(model, options)?)),
        BackendKind::Tensorrt => Err(Error::BackendUnavailable(
            "tensorrt".into(),
            "this build has no TensorRT backend; use backend=cpu (or auto)".into(),
        )),
    }
}
