//! INT8 post-training quantization of generators exported by `cyclegan-train`, for TensorRT 10
//! and 11: explicit Q/DQ nodes (TensorRT 11 has no other INT8), optionally a calibration cache for
//! TensorRT 10's implicit INT8, and a measurement of what it costs against FP32 and FP16.
//!
//! [`images`] feeds calibration images through the edge runtime's own preprocessing;
//! [`observe`] collects activation histograms with ONNX Runtime; [`scales`] picks thresholds;
//! [`graph`] decides what is quantized; [`qdq`] rewrites the model; [`calibrate`] ties it together
//! with the sensitivity pass; [`report`] and [`trt_cache`] write the results; [`compare`] measures
//! INT8 models side by side.
pub mod calibrate;
pub mod compare;
mod error;
pub mod evaluate;
pub mod graph;
pub mod images;
pub mod observe;
pub mod qdq;
pub mod report;
pub mod scales;
pub mod trt_cache;

pub use error::{Error, Result};
