//! The CUDA side of the runtime: NVRTC (loaded at run time) compiles the frame kernels for the
//! GPU at hand; cudarc drives the device.
pub mod device;
mod error;
pub mod kernels;
pub mod nvrtc;

pub use error::CudaError;
pub use kernels::{FrameLayout, Kernels, Smoothing, SmoothingState, TensorElement, Throughput, measure_throughput};
pub use nvrtc::{Nvrtc, Target};
