//! The check that a model is a generator the tools can run: it honours the [`crate::contract`]
//! and carries the [`crate::metadata`] of an export. It sits above both (the metadata uses the
//! contract's `Precision`), so the contract stays the bottom of the crate.
use crate::contract::{
    CAST_OP, FloatType, GENERATOR_OPS, INPUT, INPUT_RANGE, OPSET, OUTPUT, Precision, QDQ_OPS, is_allowed_op,
};
use crate::metadata::GeneratorMetadata;
use crate::pb::{ModelProto, ValueInfoProto, type_proto};
use crate::{Error, Result};

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
}
