//! The edge runtime: CycleGAN generators exported by `cyclegan-train` on video frames.
//!
//! - [`model`]: the ONNX file (or the bundled demo) and what its metadata promises;
//! - [`backend`]: engines that run it ([`backend::CpuBackend`]: ONNX Runtime;
//!   [`backend::TensorrtBackend`]: TensorRT with CUDA frame kernels; both loaded at run time);
//! - [`frame`], [`preprocess`], [`translator`]: frames in GStreamer's layouts to tensors and back;
//! - `gst` (feature `gst`): the `cyclegan` element; `pipeline`: the pipelines `cyclegan-edge` runs;
//! - [`doctor`]: what this machine offers (GPU, TensorRT, GStreamer elements) and a TensorRT self-test.
pub mod backend;
pub mod config;
pub mod doctor;
mod error;
pub mod frame;
pub mod model;
pub mod preprocess;
pub mod stats;
pub mod translator;

#[cfg(feature = "gst")]
pub mod bench;
pub mod bench_kernels;
#[cfg(feature = "gst")]
pub mod gst;
#[cfg(feature = "gst")]
pub mod pipeline;

pub use error::{Error, Result};
