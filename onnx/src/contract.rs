//! The generator contract every crate relies on: tensor names, element types, the operators a
//! generator may contain and its precision. The bottom of the crate (it uses only the protobuf
//! types and the error); `validate` checks a model against it.
use std::ffi::CStr;
use std::fmt;
use std::str::FromStr;

use crate::pb::tensor_proto::DataType;
use crate::{Error, Result};

/// The generator's input: `[N,3,H,W]` in [`INPUT_RANGE`].
pub const INPUT: &str = "image";
/// The generator's output, same shape and range as the input.
pub const OUTPUT: &str = "translated";
/// The same names for C APIs (TensorRT).
pub const INPUT_C: &CStr = c"image";
pub const OUTPUT_C: &CStr = c"translated";

/// The value range of input and output pixels, as the metadata writes it.
pub const INPUT_RANGE: &str = "[-1,1]";

/// The opset `cyclegan-train` writes, and the oldest one the other tools accept.
pub const OPSET: i64 = 17;

/// Operators a floating-point generator is made of.
pub const GENERATOR_OPS: [&str; 7] = ["Pad", "Conv", "ConvTranspose", "InstanceNormalization", "Relu", "Add", "Tanh"];
/// Operators an FP16 graph with FP32 input and output adds.
pub const CAST_OP: &str = "Cast";
/// Operators the INT8 (Q/DQ) rewrite adds.
pub const QDQ_OPS: [&str; 2] = ["QuantizeLinear", "DequantizeLinear"];

/// Whether `op` (in the standard domain) may appear in a generator.
pub fn is_allowed_op(op: &str) -> bool {
    GENERATOR_OPS.contains(&op) || op == CAST_OP || QDQ_OPS.contains(&op)
}

/// Element type of a float tensor: the generator's input/output, or its weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum FloatType {
    #[cfg_attr(feature = "clap", value(name = "fp32"))]
    F32,
    #[cfg_attr(feature = "clap", value(name = "fp16"))]
    F16,
}

impl FloatType {
    /// As flags and messages name it.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "fp32",
            Self::F16 => "fp16",
        }
    }

    pub fn data_type(self) -> DataType {
        match self {
            Self::F32 => DataType::Float,
            Self::F16 => DataType::Float16,
        }
    }

    pub fn from_data_type(elem_type: i32) -> Option<Self> {
        match DataType::try_from(elem_type) {
            Ok(DataType::Float) => Some(Self::F32),
            Ok(DataType::Float16) => Some(Self::F16),
            _ => None,
        }
    }
}

/// Arithmetic precision of a generator or an engine. For TensorRT 11 it lives in the ONNX
/// itself: FP16 is an FP16 graph, INT8 explicit Q/DQ nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    Fp32,
    Fp16,
    /// Q/DQ nodes written by `cyclegan-calib` (or learned by quantization-aware training).
    Int8,
}

impl Precision {
    pub const ALL: [Precision; 3] = [Self::Fp32, Self::Fp16, Self::Int8];

    pub fn name(self) -> &'static str {
        match self {
            Self::Fp32 => "fp32",
            Self::Fp16 => "fp16",
            Self::Int8 => "int8",
        }
    }

    /// Element type of the float weights of a graph of this precision (a Q/DQ graph keeps
    /// float32 weights that its DequantizeLinear nodes read).
    pub fn weight_type(self) -> FloatType {
        match self {
            Self::Fp16 => FloatType::F16,
            Self::Fp32 | Self::Int8 => FloatType::F32,
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| Error::Contract(format!("precision {s:?}: use fp32, fp16 or int8")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_names_round_trip() {
        for p in Precision::ALL {
            assert_eq!(p.name().parse::<Precision>().unwrap(), p);
        }
        assert!("bf16".parse::<Precision>().unwrap_err().to_string().contains("fp32, fp16 or int8"));
    }
}
