//! Whole-graph rewrites shared by the tools.
use crate::contract::{CAST_OP, Precision, QDQ_OPS};
use crate::metadata::{PRECISION_KEY, property, set_property};
use crate::pb::tensor_proto::DataType;
use crate::pb::{ModelProto, TensorProto, type_proto};
use crate::{Error, Result};

/// Values of a float32 tensor, from `raw_data` or `float_data`.
pub fn tensor_f32(t: &TensorProto) -> Result<Vec<f32>> {
    if t.data_type != DataType::Float as i32 {
        return Err(Error::Tensor { name: t.name.clone(), why: "is not float32" });
    }
    if !t.raw_data.is_empty() {
        if !t.raw_data.len().is_multiple_of(4) {
            return Err(Error::Tensor { name: t.name.clone(), why: "raw data is not a whole number of floats" });
        }
        return Ok(t.raw_data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect());
    }
    Ok(t.float_data.clone())
}

/// Values of a float32 or float16 tensor as f32 (float16 from `raw_data` or, as the ONNX
/// schema keeps it there, the low 16 bits of `int32_data`).
pub fn tensor_as_f32(t: &TensorProto) -> Result<Vec<f32>> {
    if t.data_type != DataType::Float16 as i32 {
        return tensor_f32(t)
            .map_err(|_| Error::Tensor { name: t.name.clone(), why: "is neither float32 nor float16" });
    }
    if !t.raw_data.is_empty() {
        if !t.raw_data.len().is_multiple_of(2) {
            return Err(Error::Tensor { name: t.name.clone(), why: "raw data is not a whole number of halves" });
        }
        return Ok(t.raw_data.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect());
    }
    Ok(t.int32_data.iter().map(|&v| half::f16::from_bits(v as u16).to_f32()).collect())
}

/// The opset from which QuantizeLinear and DequantizeLinear take float16 inputs and scales.
pub const FP16_QDQ_OPSET: i64 = 19;

/// The same generator with float16 weights, arithmetic, input and output (what TensorRT 11 builds
/// as an FP16 engine). Only float32 graphs without Cast nodes are converted. A Q/DQ model stays
/// one, its scales and unquantized layers in float16 (what TensorRT 11 builds as an INT8 engine
/// whose other layers run in FP16); its opset is raised to [`FP16_QDQ_OPSET`].
pub fn to_fp16(model: &ModelProto) -> Result<ModelProto> {
    let mut out = model.clone();
    let graph = out.graph.as_mut().ok_or(Error::NoGraph)?;
    if graph.node.iter().any(|n| n.op_type == CAST_OP) {
        return Err(Error::Contract("the graph already mixes precisions (Cast nodes); give the FP32 export".into()));
    }
    let quantized = graph.node.iter().any(|n| QDQ_OPS.contains(&n.op_type.as_str()));
    for t in graph.initializer.iter_mut().filter(|t| t.data_type == DataType::Float as i32) {
        let values = tensor_f32(t)?;
        t.raw_data = values.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect();
        t.float_data.clear();
        t.data_type = DataType::Float16 as i32;
    }
    for v in graph.input.iter_mut().chain(graph.output.iter_mut()).chain(graph.value_info.iter_mut()) {
        if let Some(type_proto::Value::TensorType(t)) = v.r#type.as_mut().and_then(|t| t.value.as_mut())
            && t.elem_type == DataType::Float as i32
        {
            t.elem_type = DataType::Float16 as i32;
        }
    }
    if quantized {
        for o in out.opset_import.iter_mut().filter(|o| o.domain.is_empty() || o.domain == "ai.onnx") {
            o.version = o.version.max(FP16_QDQ_OPSET);
        }
    } else if property(&out, PRECISION_KEY).is_some() {
        set_property(&mut out, PRECISION_KEY, Precision::Fp16.name());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FloatType;
    use crate::builder::{Dim, GraphBuilder};
    use crate::contract::{INPUT, OUTPUT};

    #[test]
    fn fp16_conversion_casts_weights_and_io_and_refuses_mixed_graphs() {
        let mut b = GraphBuilder::new("g");
        b.input(INPUT, DataType::Float, &[Dim::Named("N"), Dim::Fixed(3)]);
        let w = b.initializer("w", &[2], &[1.0, 65504.0], FloatType::F32);
        let y = b.node("Add", "add", &[INPUT, &w], vec![]);
        b.rename_value(&y, OUTPUT);
        b.output(OUTPUT, DataType::Float, &[Dim::Named("N"), Dim::Fixed(3)]);
        let model = b.finish(17, "test", "0");
        let half = to_fp16(&model).unwrap();
        let g = half.graph.as_ref().unwrap();
        let t = &g.initializer[0];
        assert_eq!(t.data_type, DataType::Float16 as i32);
        let values: Vec<f32> =
            t.raw_data.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect();
        assert_eq!(values, vec![1.0, 65504.0]);
        let elem = |v: &crate::pb::ValueInfoProto| match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(type_proto::Value::TensorType(t)) => t.elem_type,
            _ => 0,
        };
        assert_eq!(elem(&g.input[0]), DataType::Float16 as i32);
        assert_eq!(elem(&g.output[0]), DataType::Float16 as i32);
        let mut mixed = model.clone();
        mixed.graph.as_mut().unwrap().node[0].op_type = "Cast".into();
        assert!(to_fp16(&mixed).is_err());
    }
}
