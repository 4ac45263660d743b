//! The networks' sizes: a generator's [`GeneratorConfig`], and the `[model]` section of a
//! training recipe ([`ModelConfig`]), which a checkpoint's `state.json` carries.
use serde::{Deserialize, Serialize};

/// A generator family: the layers around the residual blocks are the paper's in both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// The paper's blocks: two dense 3x3 convolutions.
    #[default]
    Resnet,
    /// Depthwise-separable blocks (GAN Compression's mobile generator): the edge student.
    Mobile,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratorConfig {
    pub in_channels: i64,
    pub out_channels: i64,
    pub ngf: i64,
    pub n_blocks: i64,
    /// Instance norms with learnable scale (`weight`) and shift (`bias`).
    #[serde(default)]
    pub affine_norm: bool,
    #[serde(default)]
    pub family: Family,
}

cyclegan_settings::section! {
    /// The `[model]` section of a training recipe: both networks of a CycleGAN.
    pub struct ModelConfig, flags ModelFlags, heading "Model" {
        /// Generator family: `resnet` (the paper's) or `mobile` (depthwise-separable blocks, the
        /// edge student).
        generator: Family = Family::Resnet,
        /// Filters in the generator's first convolution.
        ngf: i64 = 64,
        /// Filters in the discriminator's first convolution.
        ndf: i64 = 64,
        /// Residual blocks in the generator (6 or 9).
        n_blocks: i64 = 9,
        /// Stride-2 layers in the PatchGAN discriminator (3 gives 70x70 patches).
        n_layers_d: i64 = 3,
        /// Standard deviation of the N(0, gain) weight initialisation.
        init_gain: f64 = 0.02,
        /// Learnable scale and shift in the generator's instance norms (the paper has none; some
        /// PyTorch variants do).
        affine_norm: bool = false,
    }
}

impl ModelConfig {
    /// The generator these settings describe (RGB in and out).
    pub fn generator(&self) -> GeneratorConfig {
        GeneratorConfig {
            in_channels: 3,
            out_channels: 3,
            ngf: self.ngf,
            n_blocks: self.n_blocks,
            affine_norm: self.affine_norm,
            family: self.generator,
        }
    }
}
