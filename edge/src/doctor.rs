//! `cyclegan-edge doctor`: what this machine offers the runtime (GPU, NVRTC, TensorRT, ONNX
//! Runtime, GStreamer elements) and, where TensorRT and a GPU exist, a self-test that builds a
//! small engine from the bundled model and compares it with the CPU backend.
use std::fmt::Write as _;

use crate::Result;
use crate::backend::cuda::device::{self, Gpu};
use crate::backend::cuda::{CudaError, Kernels, Nvrtc};
use crate::backend::tensorrt::{self, Precision, Profile, Severity, TensorRt, TensorrtOptions};
use crate::backend::{Backend, CpuBackend, CpuOptions, locate_onnxruntime};
use crate::frame::{Frame, PixelFormat, YuvMatrix, YuvRange, YuvSpec};
use crate::model::Model;
use crate::translator::FrameTranslator;

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
            Err(e) => Self { what: what.into(), status: Status::Failed, detail: crate::error::chain(&e) },
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
/// Frames in flight at once in the self-test, and their bound in 8-bit levels: 0.05 of the
/// tensor's range is 6.4 levels, plus a level of rounding in the YUV conversion.
const SELF_TEST_FRAMES: usize = 3;
const SELF_TEST_FRAME_BOUND: u8 = 8;

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
    // With a GPU, the NVRTC that can compile for it (of all found); without, the first found.
    let nvrtc = match &gpu {
        Some(gpu) => device::driver_version()
            .map_err(CudaError::from)
            .and_then(|driver| Nvrtc::load_for(gpu.compute_capability, driver))
            .map(|(nvrtc, target)| (nvrtc, Some(target))),
        None => Nvrtc::load().map(|nvrtc| (nvrtc, None)),
    };
    out.push(match &nvrtc {
        Ok((n, _)) => {
            let (major, minor) = n.version();
            Check::new("NVRTC", true, format!("{major}.{minor} ({})", n.path().display()))
        }
        Err(e) => Check::new("NVRTC", false, e.to_string()),
    });
    if let (Some(gpu), Ok((nvrtc, Some(target)))) = (&gpu, &nvrtc) {
        let compiled = Kernels::new(&gpu.context, nvrtc, target)
            .map(|k| format!("compiled for {}", k.arch()))
            .map_err(crate::Error::Kernels);
        out.push(Check::test("CUDA kernels", compiled));
    }
    out.push(match tensorrt::header_version() {
        Some(_) => Check::new("TensorRT headers", true, format!("{} (compiled in)", tensorrt::HEADERS)),
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
    out.push(match locate_onnxruntime(None) {
        Ok(found) => Check::new("ONNX Runtime", true, format!("{} (from {})", found.path.display(), found.origin)),
        Err(e) => Check::new("ONNX Runtime", false, e.to_string()),
    });
    #[cfg(feature = "gst")]
    let gst_ready = gstreamer::init().is_ok();
    // What gst-launch-1.0 and other applications load: the installed plugin, not this binary's copy.
    #[cfg(feature = "gst")]
    out.push(match gstreamer::Registry::get().find_plugin("cyclegan").filter(|_| gst_ready) {
        Some(plugin) => Check::new(
            "GStreamer plugin cyclegan",
            true,
            format!(
                "{} {}",
                plugin.filename().map(|f| f.display().to_string()).unwrap_or_else(|| "(built in)".into()),
                plugin.version()
            ),
        ),
        None => Check::new(
            "GStreamer plugin cyclegan",
            false,
            "not in GStreamer's registry: install the cyclegan-edge package, or set GST_PLUGIN_PATH to the \
             folder of libgstcyclegan.so (target/release in a checkout)",
        ),
    });
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
/// compares each with the CPU backend on the same input, as a tensor and on whole frames.
fn self_test_engine() -> Result<String> {
    let model = Model::bundled()?;
    let shape = [1usize, 3, SELF_TEST_SIZE as usize, SELF_TEST_SIZE as usize];
    let input: Vec<f32> =
        (0..shape.iter().product::<usize>()).map(|i| ((i * 7919) % 255) as f32 / 127.5 - 1.0).collect();
    let mut cpu = CpuBackend::open(&model, &CpuOptions::default())?;
    let mut expected = Vec::new();
    cpu.run(&input, shape, &mut expected)?;
    let expected_frames = frames_through(Box::new(cpu), &model)?;
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
            Ok((got, frames_through(Box::new(backend), &model)?))
        });
        let (got, frames) = match result {
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
        let frame_diff = frames
            .iter()
            .zip(&expected_frames)
            .flat_map(|(a, b)| a.to_bytes().into_iter().zip(b.to_bytes()))
            .map(|(a, b)| a.abs_diff(b))
            .max()
            .unwrap_or(0);
        if frame_diff > SELF_TEST_FRAME_BOUND {
            let _ = std::fs::remove_dir_all(&cache);
            return Err(crate::Error::Tensorrt(format!(
                "{precision} frames ({SELF_TEST_FRAMES} NV12 in flight) differ from the CPU path by {frame_diff} \
                 levels (bound {SELF_TEST_FRAME_BOUND})"
            )));
        }
        report.push(format!("{precision} max |TensorRT - CPU| = {diff:.4}, frames {frame_diff} levels"));
    }
    let _ = std::fs::remove_dir_all(&cache);
    Ok(format!("bundled model at {SELF_TEST_SIZE}x{SELF_TEST_SIZE}: {}", report.join(", ")))
}

/// Camera-like NV12 frames through `backend`'s frame path (TensorRT: the CUDA kernels), all
/// submitted before the first is finished.
fn frames_through(backend: Box<dyn Backend>, model: &Model) -> Result<Vec<Frame>> {
    let size = format!("{SELF_TEST_SIZE}x{SELF_TEST_SIZE}").parse()?;
    let mut translator = FrameTranslator::new(backend, size, model.metadata.training_resolution, 1.0);
    let yuv = YuvSpec { matrix: YuvMatrix::Bt709, range: YuvRange::Limited };
    let mut frames: Vec<Frame> = (0..SELF_TEST_FRAMES).map(|i| self_test_frame(i, yuv)).collect();
    for frame in &frames {
        translator.submit(&frame.as_ref(), yuv)?;
    }
    for frame in &mut frames {
        translator.finish(&mut frame.as_mut())?;
    }
    Ok(frames)
}

/// A 96x80 NV12 frame with gradients and texture, different for each `i`.
fn self_test_frame(i: usize, yuv: YuvSpec) -> Frame {
    let (w, h) = (96, 80);
    let rgb: Vec<u8> =
        (0..w * h).flat_map(|p| [(p % w * 2 + i * 40) as u8, (p / w * 3) as u8, (p * 7 % 251) as u8]).collect();
    Frame::from_rgb(PixelFormat::Nv12, w, h, &rgb, yuv)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BackendOptions;

    #[test]
    fn self_test_frames_in_flight_equal_frames_one_at_a_time() {
        let model = Model::bundled().unwrap();
        let options = BackendOptions { threads: 1, ..BackendOptions::default() };
        let in_flight = frames_through(Box::new(CpuBackend::open(&model, &options.cpu()).unwrap()), &model).unwrap();
        assert_eq!(in_flight.len(), SELF_TEST_FRAMES);
        // The same frames, each finished before the next is submitted.
        let backend = Box::new(CpuBackend::open(&model, &options.cpu()).unwrap());
        let size = format!("{SELF_TEST_SIZE}x{SELF_TEST_SIZE}").parse().unwrap();
        let mut translator = FrameTranslator::new(backend, size, model.metadata.training_resolution, 1.0);
        let yuv = YuvSpec { matrix: YuvMatrix::Bt709, range: YuvRange::Limited };
        for (i, done) in in_flight.iter().enumerate() {
            let mut frame = self_test_frame(i, yuv);
            translator.submit(&frame.as_ref(), yuv).unwrap();
            translator.finish(&mut frame.as_mut()).unwrap();
            assert!(frame == *done, "frame {i}");
            assert!(frame != self_test_frame(i, yuv), "frame {i} was not translated");
        }
    }
}
