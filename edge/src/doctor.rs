//! `cyclegan-edge doctor`: what this machine offers the runtime (GPU, NVRTC, TensorRT, ONNX
//! Runtime, GStreamer elements) and, where TensorRT and a GPU exist, a self-test that builds a
//! small engine from the bundled model and compares it with the CPU backend.
use std::fmt::Write as _;

use crate::Result;
use crate::backend::cuda::device::{self, Gpu};
use crate::backend::cuda::{Kernels, Nvrtc};
use crate::backend::tensorrt::{self, Precision, Profile, Severity, TensorRt, TensorrtOptions};
use crate::backend::{Backend, BackendOptions, CpuBackend, find_onnxruntime};
use crate::model::Model;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Not on this machine: the runtime works without it (on the CPU, with software elements).
    Missing,
    /// Present but not working: a self-test failed.
    Failed,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub what: String,
    pub status: Status,
    pub detail: String,
}

impl Check {
    fn new(what: &str, ok: bool, detail: impl Into<String>) -> Self {
        Self { what: what.into(), status: if ok { Status::Ok } else { Status::Missing }, detail: detail.into() }
    }

    fn test(what: &str, result: Result<String>) -> Self {
        match result {
            Ok(detail) => Self { what: what.into(), status: Status::Ok, detail },
            Err(e) => Self { what: what.into(), status: Status::Failed, detail: e.to_string() },
        }
    }
}

/// GStreamer elements the pipelines use: NVIDIA's on a Jetson, the software ones elsewhere.
pub const ELEMENTS: [&str; 11] = [
    "nvarguscamerasrc",
    "nvvidconv",
    "nvv4l2h264enc",
    "nv3dsink",
    "x264enc",
    "h264parse",
    "mp4mux",
    "matroskamux",
    "v4l2src",
    "rtspsrc",
    "autovideosink",
];

/// The TensorRT self-test's size and its bound on |TensorRT - CPU| (TensorRT may run FP32
/// layers in TF32, and FP16 engines round to 11 bits: outputs in [-1,1]).
const SELF_TEST_SIZE: i64 = 64;
const SELF_TEST_BOUND: f32 = 0.05;

/// Every check; `self_test` runs the TensorRT self-test where TensorRT and a GPU are present.
pub fn checks(self_test: bool) -> Vec<Check> {
    let mut out = Vec::new();
    let gpu = if device::driver_present() {
        match Gpu::open(0) {
            Ok(gpu) => {
                out.push(Check::new("GPU", true, gpu.describe()));
                Some(gpu)
            }
            Err(e) => {
                out.push(Check::new("GPU", false, e.to_string()));
                None
            }
        }
    } else {
        out.push(Check::new("GPU", false, "no CUDA driver (libcuda.so.1): the CPU backend only"));
        None
    };
    let nvrtc = Nvrtc::load();
    out.push(match &nvrtc {
        Ok(n) => {
            let (major, minor) = n.version();
            Check::new("NVRTC", true, format!("{major}.{minor} ({})", n.path().display()))
        }
        Err(e) => Check::new("NVRTC", false, e.to_string()),
    });
    if let (Some(gpu), Ok(nvrtc)) = (&gpu, &nvrtc) {
        let compiled = Kernels::new(&gpu.context, nvrtc)
            .map(|k| format!("compiled for {}", k.arch()))
            .map_err(|e| crate::Error::Cuda(e.to_string()));
        out.push(Check::test("CUDA kernels", compiled));
    }
    out.push(match tensorrt::header_version() {
        Some(v) => Check::new("TensorRT headers", true, format!("{v} (compiled in)")),
        None => Check::new("TensorRT headers", false, format!("none at build time ({})", tensorrt::HEADERS)),
    });
    let opened = TensorRt::open(None, Severity::Warning);
    out.push(match &opened {
        Ok(t) => Check::new(
            "TensorRT",
            true,
            format!("{} ({}, parser {})", t.version, t.path.display(), t.onnx_parser.display()),
        ),
        Err(e) => Check::new("TensorRT", false, e.to_string()),
    });
    out.push(match find_onnxruntime(None) {
        Ok(path) => Check::new("ONNX Runtime", true, path.display().to_string()),
        Err(e) => Check::new("ONNX Runtime", false, e.to_string()),
    });
    #[cfg(feature = "gst")]
    let gst_ready = gstreamer::init().is_ok();
    #[cfg(feature = "gst")]
    for element in ELEMENTS {
        let found = gst_ready && crate::pipeline::element_available(element);
        out.push(Check::new(&format!("GStreamer {element}"), found, if found { "found" } else { "missing" }));
    }
    if self_test && opened.is_ok() && gpu.is_some() {
        // The backends below open their own TensorRT and context.
        drop((opened, gpu));
        out.push(Check::test("TensorRT self-test", self_test_engine()));
    }
    out
}

/// Builds an FP32 and an FP16 engine of the bundled model at 64x64 (in a temporary cache) and
/// compares each with the CPU backend on the same input.
fn self_test_engine() -> Result<String> {
    let model = Model::bundled()?;
    let shape = [1usize, 3, SELF_TEST_SIZE as usize, SELF_TEST_SIZE as usize];
    let input: Vec<f32> =
        (0..shape.iter().product::<usize>()).map(|i| ((i * 7919) % 255) as f32 / 127.5 - 1.0).collect();
    let mut cpu = CpuBackend::open(&model, &BackendOptions::default())?;
    let mut expected = Vec::new();
    cpu.run(&input, shape, &mut expected)?;
    let cache = std::env::temp_dir().join(format!("cyclegan-doctor-{}", std::process::id()));
    let mut report = Vec::new();
    for precision in [Precision::Fp32, Precision::Fp16] {
        let options = TensorrtOptions {
            precision,
            cache_dir: Some(cache.clone()),
            profile: Some(Profile::fixed(shape.map(|d| d as i64))),
            ..TensorrtOptions::default()
        };
        let result = tensorrt::TensorrtBackend::open(&model, &options).and_then(|mut backend| {
            let mut got = Vec::new();
            backend.run(&input, shape, &mut got)?;
            Ok(got)
        });
        let got = match result {
            Ok(got) => got,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&cache);
                return Err(e);
            }
        };
        let diff = got.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        if diff > SELF_TEST_BOUND {
            let _ = std::fs::remove_dir_all(&cache);
            return Err(crate::Error::Tensorrt(format!(
                "{precision} engine differs from the CPU backend by {diff:.4} (bound {SELF_TEST_BOUND})"
            )));
        }
        report.push(format!("{precision} max |TensorRT - CPU| = {diff:.4}"));
    }
    let _ = std::fs::remove_dir_all(&cache);
    Ok(format!("bundled model at {SELF_TEST_SIZE}x{SELF_TEST_SIZE}: {}", report.join(", ")))
}

/// The report as aligned lines.
pub fn table(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.what.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        let status = match c.status {
            Status::Ok => "ok",
            Status::Missing => "missing",
            Status::Failed => "FAILED",
        };
        let _ = writeln!(out, "{:width$}  {status:7}  {}", c.what, c.detail);
    }
    out
}
