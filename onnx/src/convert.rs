//! Whole-graph rewrites shared by the tools.
use crate::pb::tensor_proto::DataType;
use crate::pb::{ModelProto, TensorProto, type_proto};
use crate::{Error, Result};

/// Values of a float32 tensor, from `raw_data` or `float_data`.
pub fn tensor_f32(t: &TensorProto) -> Result<Vec<f32>> {
    if t.data_type != DataType::Float as i32 {
        return Err(Error::Metadata(format!("tensor {} is not float32", t.name)));
    }
    if !t.raw_data.is_empty() {
        if t.raw_data.len() % 4 != 0 {
            return Err(Error::Metadata(format!("tensor {}: raw data is not a whole number of floats", t.name)));
        }
        return Ok(t.raw_data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect());
    }
    Ok(t.float_data.clone())
}

/// The same generator with float16 weights, arithmetic, input and output (what TensorRT 11 builds
/// as an FP16 engine). Only float32 graphs without Cast nodes are converted.
pub fn to_fp16(model: &ModelProto) -> Result<ModelProto> {
    let mut out = model.clone();
    let graph = out.graph.as_mut().ok_or_else(|| Error::Metadata("the model has no graph".into()))?;
    if graph.node.iter().any(|n| n.op_type == "Cast") {
        return Err(Error::Metadata("the graph already mixes precisions (Cast nodes); give the FP32 export".into()));
    }
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
    for p in out.metadata_props.iter_mut().filter(|p| p.key == "cyclegan.precision") {
        p.value = "fp16".into();
    }
    Ok(out)
}
