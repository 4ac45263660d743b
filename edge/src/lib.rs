//! The edge runtime: CycleGAN generators exported by `cyclegan-train` on video frames.
//!
//! - [`model`], [`frame`], [`preprocess`], [`translator`]: from `cyclegan-runtime` (shared with
//!   the calibration tool): the generator file, frames to tensors and back;
//! - [`backend`]: engines that run it ([`backend::CpuBackend`]: ONNX Runtime;
//!   [`backend::TensorrtBackend`]: TensorRT with CUDA frame kernels; both loaded at run time);
//! - `gst` (feature `gst`): the `cyclegan` element; `pipeline`: the pipelines `cyclegan-edge` runs;
//! - [`pretrained`]: `pretrained:NAME`, the reference project's generators fetched into the cache;
//! - [`doctor`]: what this machine offers (GPU, TensorRT, GStreamer elements) and a TensorRT self-test.
pub mod backend;
pub mod config;
pub mod doctor;
mod error;
pub mod pretrained;
pub mod stats;

pub mod bench;
#[cfg(feature = "gst")]
pub mod gst;
#[cfg(feature = "gst")]
pub mod pipeline;

pub use cyclegan_runtime::{batch, frame, model, preprocess, smoothing, translator};
pub use error::{Error, Failure, Result};
