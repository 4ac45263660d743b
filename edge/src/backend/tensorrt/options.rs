//! What an engine is built for: precision and the input shapes it accepts.
use crate::{Error, Result};

/// Arithmetic precision of an engine: the contract's. TensorRT 10 takes it as builder flags;
/// TensorRT 11 only from the ONNX (FP16 tensors, Q/DQ nodes), so FP16 converts the model first
/// there; INT8 needs the Q/DQ model of `cyclegan-calib` (or, on TensorRT 10, a calibration cache).
pub use cyclegan_onnx::Precision;

/// The precision of the backend, the element and `run` when none is asked: the paper's generators
/// lose nothing visible in FP16, and every Jetson runs it at full speed.
pub const DEFAULT_PRECISION: Precision = Precision::Fp16;

/// How TensorRT runs the generator's InstanceNormalization: its native layer (the default of
/// TensorRT 10's ONNX parser) or the plugin of libnvinfer_plugin, which is faster on some GPUs
/// and versions (NVIDIA/TensorRT#3962); `precision auto` times both where both exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceNorm {
    #[default]
    Native,
    Plugin,
}

/// The precision asked of the TensorRT backend (`--precision`, the element's `precision`): one,
/// or `auto`, chosen on the device by building and timing the candidates (see `auto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PrecisionChoice {
    Fp32,
    Fp16,
    Int8,
    /// The fastest engine on this device that keeps the PSNR floor.
    Auto,
}

impl PrecisionChoice {
    /// The precision asked, None for `auto`.
    pub fn fixed(self) -> Option<Precision> {
        match self {
            Self::Fp32 => Some(Precision::Fp32),
            Self::Fp16 => Some(Precision::Fp16),
            Self::Int8 => Some(Precision::Int8),
            Self::Auto => None,
        }
    }
}

impl From<Precision> for PrecisionChoice {
    fn from(p: Precision) -> Self {
        match p {
            Precision::Fp32 => Self::Fp32,
            Precision::Fp16 => Self::Fp16,
            Precision::Int8 => Self::Int8,
        }
    }
}

impl std::fmt::Display for PrecisionChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.fixed() {
            Some(p) => write!(f, "{p}"),
            None => f.write_str("auto"),
        }
    }
}

/// An input shape `[N, 3, H, W]`.
pub type Shape = [i64; 4];

/// The input shapes an engine accepts (TensorRT's optimization profile): every dimension of a
/// shape between `min` and `max`, tuned for `opt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Profile {
    pub min: Shape,
    pub opt: Shape,
    pub max: Shape,
}

impl Profile {
    /// One shape only: the fastest engine, what a fixed camera resolution needs.
    pub fn fixed(shape: Shape) -> Self {
        Self { min: shape, opt: shape, max: shape }
    }

    pub fn covers(&self, shape: Shape) -> bool {
        (0..4).all(|i| self.min[i] <= shape[i] && shape[i] <= self.max[i])
    }

    /// Parses `--profile MIN:OPT:MAX`, each `WxH` (batch 1) or `NxCxHxW` as trtexec writes shapes.
    pub fn parse(text: &str, flag: &str) -> Result<Self> {
        let parts: Vec<&str> = text.split(':').collect();
        let [min, opt, max] = parts.as_slice() else {
            return Err(Error::Invalid(format!(
                "{flag} {text:?}: give MIN:OPT:MAX, each WxH or NxCxHxW (e.g. 256x144:640x360:1280x720)"
            )));
        };
        let profile = Self { min: parse_shape(min, flag)?, opt: parse_shape(opt, flag)?, max: parse_shape(max, flag)? };
        let ordered = (0..4).all(|i| profile.min[i] <= profile.opt[i] && profile.opt[i] <= profile.max[i]);
        if !ordered {
            return Err(Error::Invalid(format!("{flag} {text:?}: every dimension needs MIN <= OPT <= MAX")));
        }
        Ok(profile)
    }

    /// `256x256` for a fixed batch-1 profile, else `NxCxHxW:...` (for names and messages).
    pub fn describe(&self) -> String {
        let shape = |s: &Shape| s.iter().map(i64::to_string).collect::<Vec<_>>().join("x");
        if self.min == self.max && self.min[0] == 1 {
            format!("{}x{}", self.min[3], self.min[2])
        } else {
            format!("{}:{}:{}", shape(&self.min), shape(&self.opt), shape(&self.max))
        }
    }
}

/// `WxH` (batch 1, 3 channels) or `NxCxHxW`; sides must be positive multiples of 4, as the
/// generator's two stride-2 convolutions need.
pub fn parse_shape(text: &str, flag: &str) -> Result<Shape> {
    let bad = |why: &str| Error::Invalid(format!("{flag}: shape {text:?} {why}"));
    let dims: Vec<i64> = text
        .split('x')
        .map(|d| d.trim().parse::<i64>().map_err(|_| bad("is not WxH or NxCxHxW")))
        .collect::<Result<_>>()?;
    let shape = match dims.as_slice() {
        [w, h] => [1, 3, *h, *w],
        [n, c, h, w] => [*n, *c, *h, *w],
        _ => return Err(bad("is not WxH or NxCxHxW")),
    };
    if shape[1] != 3 {
        return Err(bad("needs 3 channels (RGB)"));
    }
    if shape[0] < 1 || shape[2] < 4 || shape[3] < 4 || shape[2] % 4 != 0 || shape[3] % 4 != 0 {
        return Err(bad("needs a batch of at least 1 and sides that are multiples of 4"));
    }
    Ok(shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_read_like_our_sizes_and_like_trtexec() {
        assert_eq!(parse_shape("640x360", "--size").unwrap(), [1, 3, 360, 640]);
        assert_eq!(parse_shape("2x3x128x256", "--size").unwrap(), [2, 3, 128, 256]);
        for bad in ["640", "641x360", "1x1x128x128", "0x3x128x128", "axb", "2x3x4"] {
            let err = parse_shape(bad, "--size").unwrap_err().to_string();
            assert!(err.starts_with("--size: shape"), "{bad}: {err}");
        }
    }

    #[test]
    fn profiles_are_ordered_and_cover_their_range() {
        let p = Profile::parse("256x144:640x360:1280x720", "--profile").unwrap();
        assert_eq!(p.opt, [1, 3, 360, 640]);
        assert!(p.covers([1, 3, 360, 640]) && p.covers([1, 3, 144, 1280]));
        assert!(!p.covers([1, 3, 1080, 1920]) && !p.covers([2, 3, 360, 640]));
        assert_eq!(p.describe(), "1x3x144x256:1x3x360x640:1x3x720x1280");
        assert_eq!(Profile::fixed([1, 3, 96, 128]).describe(), "128x96");
        let err = Profile::parse("640x360:256x144:1280x720", "--profile").unwrap_err().to_string();
        assert!(err.contains("MIN <= OPT <= MAX"), "{err}");
        let err = Profile::parse("640x360", "--profile").unwrap_err().to_string();
        assert!(err.contains("MIN:OPT:MAX"), "{err}");
    }
}
