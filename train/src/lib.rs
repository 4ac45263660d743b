//! CycleGAN training with tch: models, data, trainer, distillation into edge students,
//! checkpoints, translation and a synthetic dataset with a known answer.
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod device;
pub mod dist;
pub mod distill;
pub mod error;
pub mod eval;
pub mod export;
pub mod fid;
pub mod imageio;
pub mod model;
pub mod qat;
pub mod report;
pub mod synth;
pub mod temporal;
pub mod trainer;
pub mod translate;

pub use error::{Error, Result};
