//! Inference backends: run a generator on a batch of tensors at an inference size.
mod cpu;
pub mod cuda;
mod runtime;
pub mod tensorrt;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

pub use cpu::CpuBackend;
pub use runtime::{find_onnxruntime, onnxruntime_candidates};
pub use tensorrt::{TensorrtBackend, TensorrtOptions};

use crate::frame::{FrameMut, FrameRef, YuvSpec};
use crate::model::Model;
use crate::{Error, Result};

/// A generator ready to run. Input and output are `[N,3,H,W]` float tensors in [-1,1].
pub trait Backend: Send {
    /// Short description for logs and statistics (`cpu (ONNX Runtime 1.31.1, 2 threads)`).
    fn describe(&self) -> String;

    /// Translates `input` of `shape` into `output` (resized to the same length).
    fn run(&mut self, input: &[f32], shape: [usize; 4], output: &mut Vec<f32>) -> Result<()>;

    /// Starts translating `frame` where the backend pre- and post-processes on its own device
    /// (TensorRT: copied to the GPU, CUDA kernels around the engine, all queued) and returns
    /// without waiting; `finish_frame` gives the results, oldest first. None: the caller's CPU
    /// path does pre- and post-processing, calling `run`.
    fn submit_frame(
        &mut self,
        _frame: &FrameRef<'_>,
        _yuv: YuvSpec,
        _size: (usize, usize),
        _strength: f32,
    ) -> Option<Result<()>> {
        None
    }

    /// Writes the oldest submitted frame's translation into `frame`: the frame submitted, its
    /// pixels unchanged since.
    fn finish_frame(&mut self, _frame: &mut FrameMut<'_>) -> Result<()> {
        Err(Error::Invalid(format!("{} takes no frames of its own", self.describe())))
    }

    /// Frames worth keeping in flight: 2 where one frame's copies overlap another's compute.
    fn frames_in_flight(&self) -> usize {
        1
    }

    /// Forgets the submitted frames (a flush), once the device is done with them.
    fn discard_frames(&mut self) {}

    /// The last frame's time on the device (upload to download), where the backend measures one.
    fn device_ms(&self) -> Option<f64> {
        None
    }

    /// Lines for a person that came up since the last call (an engine built, and why).
    fn take_notes(&mut self) -> Vec<String> {
        Vec::new()
    }
}

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

/// A backend, and why `auto` chose it when it fell back.
pub struct Opened {
    pub backend: Box<dyn Backend>,
    pub note: Option<String>,
}

/// Opens `model` on the backend `kind` asks for; `auto` tries TensorRT where there is a CUDA
/// driver and falls back to the CPU, saying why.
pub fn open(kind: BackendKind, model: &Model, options: &BackendOptions) -> Result<Opened> {
    let cpu = || -> Result<Box<dyn Backend>> { Ok(Box::new(CpuBackend::open(model, options)?)) };
    match kind {
        BackendKind::Cpu => Ok(Opened { backend: cpu()?, note: None }),
        BackendKind::Tensorrt => {
            Ok(Opened { backend: Box::new(TensorrtBackend::open(model, &options.tensorrt)?), note: None })
        }
        // Without a GPU driver there is nothing to say: the CPU is the only choice.
        BackendKind::Auto if !cuda::device::driver_present() => Ok(Opened { backend: cpu()?, note: None }),
        BackendKind::Auto => match TensorrtBackend::open(model, &options.tensorrt) {
            Ok(backend) => Ok(Opened { backend: Box::new(backend), note: None }),
            Err(e) => Ok(Opened {
                backend: cpu()?,
                note: Some(format!("backend auto: using the CPU, TensorRT is not usable: {e}")),
            }),
        },
    }
}
