//! `metadata_props` of an exported generator: what the edge runtime and the calibration tool
//! read instead of asking the user again.
use serde::{Deserialize, Serialize};

use crate::contract::Precision;
use crate::pb::{ModelProto, StringStringEntryProto};
use crate::{Error, Result};

pub const KEY_PREFIX: &str = "cyclegan.";
/// The graph's precision; rewritten by FP16 conversion and by calibration.
pub const PRECISION_KEY: &str = "cyclegan.precision";
/// How the INT8 scales were found (JSON), written by calibration.
pub const CALIBRATION_KEY: &str = "cyclegan.calibration";

/// Where a generator published elsewhere was downloaded from (`cyclegan-edge models get`).
pub const SOURCE_URL_KEY: &str = "cyclegan.source_url";

/// Sets one property, replacing any of the same key.
pub fn set_property(model: &mut ModelProto, key: &str, value: impl Into<String>) {
    model.metadata_props.retain(|p| p.key != key);
    model.metadata_props.push(StringStringEntryProto { key: key.into(), value: value.into() });
}

/// The value of one property.
pub fn property<'a>(model: &'a ModelProto, key: &str) -> Option<&'a str> {
    model.metadata_props.iter().find(|p| p.key == key).map(|p| p.value.as_str())
}

/// Everything an exported generator says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratorMetadata {
    /// `a2b` or `b2a`.
    pub direction: String,
    /// Name of the input domain (e.g. `summer`).
    pub source_domain: String,
    /// Name of the output domain (e.g. `winter`).
    pub target_domain: String,
    /// Value range of input and output pixels, `[-1,1]`.
    pub input_range: String,
    /// Side of the square crops the generator was trained on.
    pub training_resolution: u32,
    /// Generator hyper-parameters as JSON (`{"ngf":64,"n_blocks":9,...}`).
    pub generator: String,
    /// SHA-256 of the source weights.
    pub source_sha256: String,
    /// `fp32`, `fp16` or (after calibration) `int8`.
    pub precision: Precision,
    pub tool_version: String,
}

const FIELDS: [&str; 9] = [
    "direction",
    "source_domain",
    "target_domain",
    "input_range",
    "training_resolution",
    "generator",
    "source_sha256",
    "precision",
    "tool_version",
];

impl GeneratorMetadata {
    fn values(&self) -> [String; 9] {
        [
            self.direction.clone(),
            self.source_domain.clone(),
            self.target_domain.clone(),
            self.input_range.clone(),
            self.training_resolution.to_string(),
            self.generator.clone(),
            self.source_sha256.clone(),
            self.precision.name().to_string(),
            self.tool_version.clone(),
        ]
    }

    /// Replaces the model's `cyclegan.*` properties with these.
    pub fn write_to(&self, model: &mut ModelProto) {
        model.metadata_props.retain(|p| !p.key.starts_with(KEY_PREFIX));
        for (key, value) in FIELDS.iter().zip(self.values()) {
            model.metadata_props.push(StringStringEntryProto { key: format!("{KEY_PREFIX}{key}"), value });
        }
    }

    /// Reads the properties back; a missing one is an error naming it.
    pub fn read_from(model: &ModelProto) -> Result<Self> {
        let get = |key: &str| -> Result<String> {
            let full = format!("{KEY_PREFIX}{key}");
            property(model, &full).map(str::to_string).ok_or_else(|| {
                Error::Metadata(format!("no `{full}` property: not a generator exported by cyclegan-train"))
            })
        };
        let precision = get("precision")?;
        let resolution = get("training_resolution")?;
        Ok(Self {
            direction: get("direction")?,
            source_domain: get("source_domain")?,
            target_domain: get("target_domain")?,
            input_range: get("input_range")?,
            training_resolution: resolution
                .parse()
                .map_err(|_| Error::Metadata(format!("training_resolution {resolution:?} is not a number")))?,
            generator: get("generator")?,
            source_sha256: get("source_sha256")?,
            precision: precision
                .parse()
                .map_err(|_| Error::Metadata(format!("{PRECISION_KEY} {precision:?} is not fp32, fp16 or int8")))?,
            tool_version: get("tool_version")?,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> GeneratorMetadata {
        GeneratorMetadata {
            direction: "a2b".into(),
            source_domain: "summer".into(),
            target_domain: "winter".into(),
            input_range: "[-1,1]".into(),
            training_resolution: 256,
            generator: "{}".into(),
            source_sha256: "00".into(),
            precision: Precision::Fp16,
            tool_version: "0.1.0".into(),
        }
    }

    #[test]
    fn round_trips_and_names_what_is_missing() {
        let meta = sample();
        let mut model = ModelProto::default();
        meta.write_to(&mut model);
        meta.write_to(&mut model);
        assert_eq!(model.metadata_props.len(), 9);
        assert_eq!(GeneratorMetadata::read_from(&model).unwrap(), meta);
        model.metadata_props.retain(|p| p.key != "cyclegan.direction");
        let err = GeneratorMetadata::read_from(&model).unwrap_err().to_string();
        assert!(err.contains("cyclegan.direction"), "{err}");
    }
}
