//! Writes the quantized model: QuantizeLinear/DequantizeLinear pairs (INT8, symmetric, zero point
//! 0) on the chosen activations, INT8 weights with per-channel DequantizeLinear, everything else
//! untouched. TensorRT 10 and 11 build such explicitly quantized networks.
use std::collections::{BTreeMap, BTreeSet, HashMap};

use cyclegan_onnx::Precision;
use cyclegan_onnx::convert::tensor_f32;
use cyclegan_onnx::metadata::{CALIBRATION_KEY, PRECISION_KEY, set_property};
use cyclegan_onnx::pb::{ModelProto, NodeProto, TensorProto, tensor_proto::DataType};

use crate::graph::Plan;
use crate::scales::{quantize, weight_scales};
use crate::{Error, Result};

/// What to quantize: activation scales by tensor name, and the layers to leave in float.
#[derive(Debug, Clone, Default)]
pub struct Quantization {
    pub activation_scales: BTreeMap<String, f32>,
    pub keep_fp: BTreeSet<String>,
}

fn scalar_f32(name: &str, v: f32) -> TensorProto {
    TensorProto {
        name: name.into(),
        data_type: DataType::Float as i32,
        raw_data: v.to_le_bytes().to_vec(),
        ..Default::default()
    }
}

fn int8(name: &str, dims: Vec<i64>, values: &[i8]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims,
        data_type: DataType::Int8 as i32,
        raw_data: values.iter().map(|v| *v as u8).collect(),
        ..Default::default()
    }
}

fn node(op: &str, name: String, inputs: [&str; 3], output: &str, axis: Option<i64>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name,
        input: inputs.iter().map(|s| (*s).into()).collect(),
        output: vec![output.into()],
        attribute: axis.map(|a| cyclegan_onnx::builder::attr_int("axis", a)).into_iter().collect(),
        ..Default::default()
    }
}

/// The names `rewrite` gives an activation's Q/DQ pair: scale, zero point, QuantizeLinear's and
/// DequantizeLinear's outputs.
struct Names {
    scale: String,
    zero_point: String,
    quantized: String,
    dequantized: String,
}

fn names(tensor: &str) -> Names {
    Names {
        scale: format!("{tensor}_scale"),
        zero_point: format!("{tensor}_zero_point"),
        quantized: format!("{tensor}_QuantizeLinear_out"),
        dequantized: format!("{tensor}_DequantizeLinear_out"),
    }
}

/// The Q/DQ model for `plan`; layers named in `q.keep_fp` keep float inputs and weights.
pub fn rewrite(model: &ModelProto, plan: &Plan, q: &Quantization) -> Result<ModelProto> {
    let mut out = model.clone();
    let graph = out.graph.as_mut().ok_or_else(|| Error::Model("the model has no graph".into()))?;
    let input_name = graph.input.first().map(|i| i.name.clone()).unwrap_or_default();
    // New nodes, each with the value after whose producer it goes ("" = before everything).
    let mut new_nodes: Vec<(String, NodeProto)> = Vec::new();
    let mut done = BTreeSet::new();
    for l in plan.layers.iter().filter(|l| !q.keep_fp.contains(&l.name)) {
        let tensor = &l.input;
        let Names { scale: s, zero_point: z, quantized: qv, dequantized: dq } = names(tensor);
        if done.insert(tensor.clone()) {
            let scale =
                *q.activation_scales.get(tensor).ok_or_else(|| Error::Model(format!("no scale for `{tensor}`")))?;
            graph.initializer.push(scalar_f32(&s, scale));
            graph.initializer.push(int8(&z, vec![], &[0]));
            let after = if *tensor == input_name { String::new() } else { tensor.clone() };
            new_nodes.push((
                after.clone(),
                node("QuantizeLinear", format!("{tensor}_QuantizeLinear"), [tensor, &s, &z], &qv, None),
            ));
            new_nodes.push((
                after,
                node("DequantizeLinear", format!("{tensor}_DequantizeLinear"), [&qv, &s, &z], &dq, None),
            ));
        }
        let n = graph.node.iter_mut().find(|n| n.name == l.name).expect("planned from this graph");
        n.input[l.input_index] = dq;
        let Some((weight, axis)) = &l.weight else { continue };
        let at = graph.initializer.iter().position(|t| &t.name == weight).expect("planned from this graph");
        let w = graph.initializer.remove(at);
        let values = tensor_f32(&w)?;
        let scales = weight_scales(&values, &w.dims, *axis);
        let channels = scales.len();
        let inner: usize = w.dims[axis + 1..].iter().product::<i64>() as usize;
        let quantized: Vec<i8> =
            values.iter().enumerate().map(|(i, v)| quantize(*v, scales[(i / inner) % channels])).collect();
        let (wq, s, z, wdq) = (
            format!("{weight}_quantized"),
            format!("{weight}_scale"),
            format!("{weight}_zero_point"),
            format!("{weight}_DequantizeLinear_out"),
        );
        graph.initializer.push(int8(&wq, w.dims.clone(), &quantized));
        graph.initializer.push(TensorProto {
            name: s.clone(),
            dims: vec![channels as i64],
            data_type: DataType::Float as i32,
            raw_data: scales.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        graph.initializer.push(int8(&z, vec![channels as i64], &vec![0; channels]));
        new_nodes.push((
            String::new(),
            node("DequantizeLinear", format!("{weight}_DequantizeLinear"), [&wq, &s, &z], &wdq, Some(*axis as i64)),
        ));
        let n = graph.node.iter_mut().find(|n| n.name == l.name).expect("planned from this graph");
        n.input[1] = wdq;
    }
    // Keep the node list topologically sorted: each new node right after its producer.
    let mut nodes: Vec<NodeProto> =
        new_nodes.iter().filter(|(after, _)| after.is_empty()).map(|(_, n)| n.clone()).collect();
    for n in std::mem::take(&mut graph.node) {
        let outputs = n.output.clone();
        nodes.push(n);
        nodes.extend(new_nodes.iter().filter(|(after, _)| outputs.contains(after)).map(|(_, n)| n.clone()));
    }
    graph.node = nodes;
    Ok(out)
}

/// [`rewrite`] with the metadata every INT8 model carries: its precision and where its scales
/// came from (`record`: the method, what stayed in float, ...), whatever made them.
pub fn quantized_model(
    model: &ModelProto,
    plan: &Plan,
    q: &Quantization,
    record: &serde_json::Value,
) -> Result<ModelProto> {
    let mut out = rewrite(model, plan, q)?;
    set_property(&mut out, CALIBRATION_KEY, record.to_string());
    set_property(&mut out, PRECISION_KEY, Precision::Int8.name());
    Ok(out)
}

/// The quantization a Q/DQ model of `plan`'s graph holds, as [`rewrite`] wrote it: each quantized
/// activation's scale and the layers left in float. Fails, naming `origin`, when `quantized` is
/// not a Q/DQ model of that graph.
pub fn read(quantized: &ModelProto, plan: &Plan, origin: &str) -> Result<Quantization> {
    let g = quantized.graph.as_ref().ok_or_else(|| Error::Model(format!("{origin}: the model has no graph")))?;
    let other = |why: String| Error::Model(format!("{origin}: {why}; it was made from another generator"));
    let nodes: HashMap<&str, &NodeProto> = g.node.iter().map(|n| (n.name.as_str(), n)).collect();
    let initializers: HashMap<&str, &TensorProto> = g.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut out = Quantization::default();
    for l in &plan.layers {
        let n = nodes.get(l.name.as_str()).ok_or_else(|| other(format!("has no layer `{}`", l.name)))?;
        let input = n.input.get(l.input_index).map(String::as_str).unwrap_or_default();
        let Names { scale, dequantized, .. } = names(&l.input);
        if input == l.input {
            out.keep_fp.insert(l.name.clone());
        } else if input == dequantized {
            let values = initializers
                .get(scale.as_str())
                .map(|t| tensor_f32(t))
                .transpose()?
                .filter(|v| v.len() == 1)
                .ok_or_else(|| Error::Model(format!("{origin}: `{scale}` is missing or not one float")))?;
            out.activation_scales.insert(l.input.clone(), values[0]);
        } else {
            return Err(other(format!("layer `{}` reads `{input}` where `{}` was expected", l.name, l.input)));
        }
    }
    let convolutions = g.node.iter().filter(|n| matches!(n.op_type.as_str(), "Conv" | "ConvTranspose")).count();
    let planned = plan.layers.iter().filter(|l| l.weight.is_some()).count();
    if convolutions != planned {
        return Err(other(format!("its number of convolutions is not the {planned} of this graph")));
    }
    Ok(out)
}
