//! The weights of a ResNet generator exported by `torch.onnx.export` (no `cyclegan.*` metadata,
//! PyTorch's tensor names, pads computed by helper nodes), in module order, for the importer to
//! match like a `.pth`'s. Only the graph's shape is read here; that the rebuilt generator
//! computes what the file computes is checked by running both (the edge tool does).
use std::collections::HashMap;

use cyclegan_onnx::contract::{CAST_OP, GENERATOR_OPS};
use cyclegan_onnx::convert::tensor_as_f32;
use cyclegan_onnx::pb::{ModelProto, TensorProto, type_proto};

use crate::pth::ImportError;
use crate::tensor::NamedTensor;

/// Operators PyTorch's exporters emit around a reference generator besides its own: the legacy
/// exporter computes `ReflectionPad2d`'s pads with these, and renames values with `Identity`.
const HELPER_OPS: [&str; 12] = [
    "Constant",
    "ConstantOfShape",
    "Concat",
    "Reshape",
    "Slice",
    "Transpose",
    "Shape",
    "Gather",
    "Unsqueeze",
    "Squeeze",
    "Identity",
    "Range",
];

type Result<T> = std::result::Result<T, ImportError>;

/// The image input of a graph: its one input that is not an initializer (old exports list
/// weights as inputs too), 4-D with 3 channels.
fn check_io(model: &ModelProto) -> Result<()> {
    let graph = model.graph.as_ref().ok_or("the ONNX model has no graph")?;
    let initializers: Vec<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<_> = graph.input.iter().filter(|i| !initializers.contains(&i.name.as_str())).collect();
    let [input] = inputs.as_slice() else {
        return Err(format!("the graph has {} inputs; a generator has one image input", inputs.len()).into());
    };
    let [_] = graph.output.as_slice() else {
        return Err(format!("the graph has {} outputs; a generator has one", graph.output.len()).into());
    };
    let Some(type_proto::Value::TensorType(t)) = input.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return Err(format!("input `{}` is not a tensor", input.name).into());
    };
    let dims = t.shape.as_ref().map(|s| s.dim.as_slice()).unwrap_or_default();
    let channels = dims.get(1).and_then(|d| match d.value {
        Some(cyclegan_onnx::pb::tensor_shape_proto::dimension::Value::DimValue(v)) => Some(v),
        _ => None,
    });
    if dims.len() != 4 || channels.is_some_and(|c| c != 3) {
        return Err(format!("input `{}` is not an [N,3,H,W] image", input.name).into());
    }
    Ok(())
}

/// Tensors known before the graph runs: initializers, `Constant` nodes and their `Identity` copies.
fn constants(model: &ModelProto) -> HashMap<&str, &TensorProto> {
    let graph = model.graph.as_ref().expect("checked by check_io");
    let mut out: HashMap<&str, &TensorProto> = graph.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
    for node in &graph.node {
        match node.op_type.as_str() {
            "Constant" => {
                if let (Some(name), Some(t)) =
                    (node.output.first(), node.attribute.iter().find(|a| a.name == "value").and_then(|a| a.t.as_ref()))
                {
                    out.insert(name, t);
                }
            }
            "Identity" => {
                if let (Some(from), Some(to)) = (node.input.first(), node.output.first())
                    && let Some(t) = out.get(from.as_str()).copied()
                {
                    out.insert(to, t);
                }
            }
            _ => {}
        }
    }
    out
}

/// The convolutions' weights and biases and the instance norms' scales and shifts (left out
/// when they are the identity, as a norm without parameters exports), in graph order, named
/// `n{node}.weight` / `n{node}.bias` so that the importer groups them by module.
pub fn generator_weights(model: &ModelProto) -> Result<Vec<NamedTensor>> {
    check_io(model)?;
    let graph = model.graph.as_ref().expect("checked by check_io");
    if let Some(node) = graph.node.iter().find(|n| {
        let op = n.op_type.as_str();
        !(n.domain.is_empty() || n.domain == "ai.onnx")
            || !(GENERATOR_OPS.contains(&op) || HELPER_OPS.contains(&op) || op == CAST_OP)
    }) {
        return Err(ImportError::Generator(format!(
            "node `{}` is a {}{}, which a ResNet CycleGAN generator does not have (it has {})",
            node.name,
            node.op_type,
            if node.domain.is_empty() { String::new() } else { format!(" of domain {}", node.domain) },
            GENERATOR_OPS.join(", ")
        )));
    }
    let known = constants(model);
    let tensor = |node: usize, input: &str, leaf: &str, op: &str| -> Result<NamedTensor> {
        let t = known.get(input).ok_or_else(|| {
            ImportError::Generator(format!("the {leaf} of {op} node {node} (`{input}`) is computed, not stored"))
        })?;
        let data = tensor_as_f32(t).map_err(|e| ImportError::Generator(format!("{op} node {node}: {e}")))?;
        let shape = t.dims.clone();
        if shape.iter().product::<i64>() != data.len() as i64 {
            return Err(ImportError::Generator(format!(
                "{op} node {node}: `{input}` holds {} values for shape {shape:?}",
                data.len()
            )));
        }
        Ok(NamedTensor { name: format!("n{node}.{leaf}"), shape, data })
    };
    let mut out = Vec::new();
    for (i, node) in graph.node.iter().enumerate() {
        let op = node.op_type.as_str();
        let inputs: Vec<&str> = node.input.iter().map(String::as_str).filter(|n| !n.is_empty()).collect();
        match op {
            "Conv" | "ConvTranspose" => {
                let weight = inputs.get(1).ok_or_else(|| format!("{op} node {i} has no weight"))?;
                out.push(tensor(i, weight, "weight", op)?);
                if let Some(bias) = inputs.get(2) {
                    out.push(tensor(i, bias, "bias", op)?);
                }
            }
            "InstanceNormalization" => {
                let (Some(scale), Some(shift)) = (inputs.get(1), inputs.get(2)) else {
                    return Err(format!("InstanceNormalization node {i} lacks its scale or bias").into());
                };
                let (scale, shift) = (tensor(i, scale, "weight", op)?, tensor(i, shift, "bias", op)?);
                if !(scale.data.iter().all(|&v| v == 1.0) && shift.data.iter().all(|&v| v == 0.0)) {
                    out.push(scale);
                    out.push(shift);
                }
            }
            _ => {}
        }
    }
    Ok(out)
}
