//! The reference CycleGAN project's published generators and datasets, by name: where they are
//! (`catalog`), where they are kept (`cache`), how they are fetched (`download`: resumable, with
//! progress and SHA-256) and how a dataset archive becomes `trainA/trainB/testA/testB` (`dataset`).
//! Turning a fetched `.pth` into ONNX is the model crate's job; the tools wire the two.
pub mod cache;
pub mod catalog;
pub mod dataset;
pub mod download;
pub mod error;

pub use error::{Error, Result};
