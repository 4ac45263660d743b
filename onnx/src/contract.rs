//! The generator contract every crate relies on: tensor names, element types, the operators a
//! generator may contain, its precision, and one check that a model honours all of it.
use std::ffi::CStr;
use std::fmt;
use std::str::FromStr;

use crate::metadata::GeneratorMetadata;
use crate::pb::tensor_proto::DataType;
use crate::pb::{ModelProto, ValueInfoProto, type_proto};
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
pub enum FloatType {
    F32,
    F16,
}

impl FloatType {
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

/// What a model that passed [`validate_generator`] is.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorInfo {
    pub metadata: GeneratorMetadata,
    /// Element type of `image` and `translated`.
    pub io_type: FloatType,
    /// Int8 when the graph holds Q/DQ nodes, else what the metadata says.
    pub precision: Precision,
}

impl GeneratorInfo {
    pub fn quantized(&self) -> bool {
        self.precision == Precision::Int8
    }
}

fn io_type(name: &str, values: &[ValueInfoProto]) -> Result<FloatType> {
    let bad = |why: String| Err(Error::Contract(why));
    let Some(value) = values.iter().find(|v| v.name == name) else {
        return bad(format!("the graph has no `{name}` tensor (inputs/outputs must be `{INPUT}` -> `{OUTPUT}`)"));
    };
    let Some(type_proto::Value::TensorType(tensor)) = value.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return bad(format!("`{name}` is not a tensor"));
    };
    if tensor.shape.as_ref().map(|s| s.dim.len()) != Some(4) {
        return bad(format!("`{name}` must be a 4-D [N,3,H,W] tensor"));
    }
    FloatType::from_data_type(tensor.elem_type)
        .map_or_else(|| bad(format!("`{name}` has element type {}; float32 or float16 expected", tensor.elem_type)), Ok)
}

/// Checks that `model` is a generator the tools can run: metadata written by `cyclegan-train`,
/// the pixel range we feed, `image` -> `translated` of one float type, standard-domain operators
/// of a generator only, opset [`OPSET`] or newer.
pub fn validate_generator(model: &ModelProto) -> Result<GeneratorInfo> {
    let graph = model.graph.as_ref().ok_or(Error::NoGraph)?;
    let metadata = GeneratorMetadata::read_from(model)?;
    if metadata.input_range.replace(' ', "") != INPUT_RANGE {
        return Err(Error::Contract(format!(
            "its metadata says the input range is {}, but the tools feed {INPUT_RANGE}; re-export it with \
             `cyclegan-train export`",
            metadata.input_range
        )));
    }
    let opset = model.opset_import.iter().find(|o| o.domain.is_empty() || o.domain == "ai.onnx").map(|o| o.version);
    match opset {
        Some(v) if v >= OPSET => {}
        Some(v) => return Err(Error::Contract(format!("opset {v} is older than {OPSET}; re-export the generator"))),
        None => return Err(Error::Contract("the model imports no standard-domain opset".into())),
    }
    if let Some(node) = graph.node.iter().find(|n| !(n.domain.is_empty() || n.domain == "ai.onnx")) {
        return Err(Error::Contract(format!(
            "node `{}` is of domain `{}`; a generator uses standard-domain operators only",
            node.name, node.domain
        )));
    }
    if let Some(node) = graph.node.iter().find(|n| !is_allowed_op(&n.op_type)) {
        return Err(Error::Contract(format!(
            "node `{}` is a {}, which is not part of a CycleGAN generator (allowed: {}, {CAST_OP}, {})",
            node.name,
            node.op_type,
            GENERATOR_OPS.join(", "),
            QDQ_OPS.join(", ")
        )));
    }
    let io = io_type(INPUT, &graph.input)?;
    if io_type(OUTPUT, &graph.output)? != io {
        return Err(Error::Contract(format!("`{INPUT}` and `{OUTPUT}` have different element types")));
    }
    let quantized = graph.node.iter().any(|n| QDQ_OPS.contains(&n.op_type.as_str()));
    let precision = if quantized { Precision::Int8 } else { metadata.precision };
    Ok(GeneratorInfo { metadata, io_type: io, precision })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::{Dim, GraphBuilder};

    fn model(op: &str, io: FloatType) -> ModelProto {
        let mut b = GraphBuilder::new("g");
        let dims = [Dim::Named("N"), Dim::Fixed(3), Dim::Named("H"), Dim::Named("W")];
        b.input(INPUT, io.data_type(), &dims);
        let y = b.node(op, "model.3.Relu", &[INPUT], vec![]);
        b.rename_value(&y, OUTPUT);
        b.output(OUTPUT, io.data_type(), &dims);
        let mut m = b.finish(OPSET, "test", "0");
        crate::metadata::tests::sample().write_to(&mut m);
        m
    }

    #[test]
    fn a_generator_passes_and_says_what_it_is() {
        let info = validate_generator(&model("Relu", FloatType::F16)).unwrap();
        assert_eq!((info.io_type, info.precision), (FloatType::F16, Precision::Fp16));
        let q = validate_generator(&model("QuantizeLinear", FloatType::F32)).unwrap();
        assert!(q.quantized());
    }

    #[test]
    fn each_breach_is_named() {
        let err = |m: &ModelProto| validate_generator(m).unwrap_err().to_string();
        assert!(err(&model("Sigmoid", FloatType::F32)).contains("`model.3.Relu` is a Sigmoid"));
        let mut old = model("Relu", FloatType::F32);
        old.opset_import[0].version = 13;
        assert!(err(&old).contains("opset 13"));
        let mut custom = model("Relu", FloatType::F32);
        custom.graph.as_mut().unwrap().node[0].domain = "com.microsoft".into();
        assert!(err(&custom).contains("domain `com.microsoft`"));
        let mut renamed = model("Relu", FloatType::F32);
        renamed.graph.as_mut().unwrap().input[0].name = "input".into();
        assert!(err(&renamed).contains("no `image` tensor"));
        let mut range = model("Relu", FloatType::F32);
        let mut meta = GeneratorMetadata::read_from(&range).unwrap();
        meta.input_range = "[0,1]".into();
        meta.write_to(&mut range);
        assert!(err(&range).contains("input range is [0,1]"));
        let mut bare = model("Relu", FloatType::F32);
        bare.metadata_props.clear();
        assert!(err(&bare).contains("not a generator exported by cyclegan-train"));
    }

    #[test]
    fn precision_names_round_trip() {
        for p in Precision::ALL {
            assert_eq!(p.name().parse::<Precision>().unwrap(), p);
        }
        assert!("bf16".parse::<Precision>().unwrap_err().to_string().contains("fp32, fp16 or int8"));
    }
}
