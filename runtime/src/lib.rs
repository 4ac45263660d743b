//! What the edge runtime and the calibration tool share, with no GStreamer and no CUDA:
//!
//! - [`model`]: a generator file (or the bundled demo), validated against the ONNX contract;
//! - [`frame`], [`resize`], [`preprocess`], [`translator`]: frames in GStreamer's layouts to
//!   tensors and back; [`smoothing`]: the temporal smoothing of the translated frames;
//! - [`backend`]: what runs a generator, and [`cpu`], ONNX Runtime's CPU backend, with the
//!   library found by [`onnxruntime`] and loaded at run time; [`batch`]: one loaded generator
//!   serving several streams, their frames run in batches;
//! - [`motion`]: sequences with known motion and the warping error, to measure flicker;
//! - [`venv`]: the project's `.venv`, where libraries, Python and Inception are looked for;
//! - [`size`]: `WxH` as every tool's flags take it.
pub mod backend;
pub mod batch;
pub mod cpu;
mod error;
pub mod frame;
pub mod model;
pub mod motion;
pub mod onnxruntime;
pub mod preprocess;
pub mod quality;
pub mod resize;
pub mod size;
pub mod smoothing;
pub mod translator;
pub mod venv;

pub use error::{Error, Result, chain};
