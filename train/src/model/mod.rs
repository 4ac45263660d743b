//! The CycleGAN networks as plain functions over `nn::Path`. Variable names follow the
//! reference PyTorch implementation's `state_dict` keys (`model.1.weight`, ...), so weights
//! move between the two by name.
mod discriminator;
pub mod fake_quant;
mod generator;
mod layers;

pub use discriminator::{DiscriminatorConfig, patch_discriminator};
pub use generator::{Generator, generator, quantized_generator};
