//! What the edge runtime and the calibration tool share, with no GStreamer and no CUDA:
//!
//! - [`model`]: a generator file (or the bundled demo), validated against the ONNX contract;
//! - [`frame`], [`resize`], [`preprocess`], [`translator`]: frames in GStreamer's layouts to
//!   tensors and back;
//! - [`backend`]: what runs a generator, and [`cpu`], ONNX Runtime's CPU backend, with the
//!   library found by [`onnxruntime`] and loaded at run time.
pub mod backend;
pub mod cpu;
mod error;
pub mod frame;
pub mod model;
pub mod onnxruntime;
pub mod preprocess;
pub mod resize;
pub mod translator;

pub use error::{Error, Result, chain};
