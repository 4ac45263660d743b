//! TensorRT's calibration cache (implicit INT8 on TensorRT 10): a header line naming the
//! TensorRT version and calibrator, then `tensor: scale` with the scale as the big-endian bits of
//! a float32 in 8 hex digits.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;

use cyclegan_onnx::pb::ModelProto;
use cyclegan_runtime::preprocess::Preprocessor;
use indicatif::ProgressBar;

use crate::scales::{self, Method};
use crate::{Error, Result, graph, images, observe};

/// A TensorRT release, e.g. 10.3.0 (JetPack 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrtVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl FromStr for TrtVersion {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<u32> = s.split('.').map(|p| p.parse().ok()).collect::<Option<_>>().unwrap_or_default();
        match parts[..] {
            [major, minor, patch] if major >= 7 && minor < 100 && patch < 100 => Ok(Self { major, minor, patch }),
            _ => Err(Error::Invalid(format!("--trt-version {s}: give MAJOR.MINOR.PATCH, e.g. 10.3.0"))),
        }
    }
}

impl std::fmt::Display for TrtVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl TrtVersion {
    /// JetPack 6's TensorRT, which a cache names unless told otherwise.
    pub const JETPACK6: TrtVersion = TrtVersion { major: 10, minor: 3, patch: 0 };

    /// The number TensorRT writes (`getInferLibVersion()`): 8601 for 8.6.1, 100300 for 10.3.0.
    pub fn number(self) -> u32 {
        let major = if self.major >= 10 { self.major * 10_000 } else { self.major * 1000 };
        major + self.minor * 100 + self.patch
    }
}

/// The cache text for per-tensor `scales` (threshold / 127).
pub fn write(version: TrtVersion, scales: &BTreeMap<String, f32>) -> String {
    let mut out = format!("TRT-{}-EntropyCalibration2\n", version.number());
    for (name, scale) in scales {
        out.push_str(&format!("{name}: {:08x}\n", scale.to_bits()));
    }
    out
}

/// The scale of every activation of the FP32 `model`, as a cache needs them: observed on
/// `images` and chosen by `method`, except those `fixed` gives (scales learned by
/// quantization-aware training, for the tensors its Q/DQ nodes read).
pub fn activation_scales(
    model: &ModelProto,
    paths: &[PathBuf],
    method: Method,
    threads: usize,
    fixed: &BTreeMap<String, f32>,
) -> Result<BTreeMap<String, f32>> {
    let info = cyclegan_onnx::validate_generator(model).map_err(|source| Error::Onnx { flag: "--model", source })?;
    let mut pre = Preprocessor::default();
    let samples = paths
        .iter()
        .map(|p| images::load(p, Default::default(), info.metadata.training_resolution, &mut pre))
        .collect::<Result<Vec<_>>>()?;
    let names = graph::all_activations(model)?;
    let hist = observe::histograms(model, &names, &samples, threads, &ProgressBar::hidden())?;
    let mut out = scales::observed(&hist, method);
    for (tensor, scale) in fixed {
        if let Some(slot) = out.get_mut(tensor) {
            *slot = *scale;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_hex_scales() {
        let v: TrtVersion = "10.3.0".parse().unwrap();
        assert_eq!(v.number(), 100300);
        assert_eq!("8.6.1".parse::<TrtVersion>().unwrap().number(), 8601);
        assert!("10.3".parse::<TrtVersion>().is_err());
        assert_eq!(TrtVersion::JETPACK6, v);
        assert_eq!(v.to_string(), "10.3.0");
        let scales = BTreeMap::from([("image".to_string(), 1.0f32 / 127.0), ("x".to_string(), 0.5)]);
        // 1/127 = 0x3c010204 and 0.5 = 0x3f000000 as IEEE-754 single precision, big-endian hex.
        assert_eq!(write(v, &scales), "TRT-100300-EntropyCalibration2\nimage: 3c010204\nx: 3f000000\n");
    }
}
