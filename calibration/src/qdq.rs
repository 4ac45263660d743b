//! Writes the quantized model: QuantizeLinear/DequantizeLinear pairs (INT8, symmetric, zero point
//! 0) on the chosen activations, INT8 weights with per-channel DequantizeLinear, everything else
//! untouched. TensorRT 10 and 11 build such explicitly quantized networks.
use std::collections::{BTreeMap, BTreeSet, HashMap};

use cyclegan_onnx::Precision;
use cyclegan_onnx::convert::{tensor_as_f32, tensor_f32};
use cyclegan_onnx::metadata::{CALIBRATION_KEY, PRECISION_KEY, set_property};
use cyclegan_onnx::pb::{GraphProto, ModelProto, NodeProto, TensorProto, tensor_proto::DataType};

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

/// Adds a per-tensor Q/DQ pair on `tensor` with `scale` (once per tensor: a tensor already in
/// `done` keeps its pair) and returns the DequantizeLinear's output.
fn activation_pair(
    graph: &mut GraphProto,
    new_nodes: &mut Vec<(String, NodeProto)>,
    done: &mut BTreeSet<String>,
    tensor: &str,
    scale: f32,
) -> String {
    let Names { scale: s, zero_point: z, quantized: qv, dequantized: dq } = names(tensor);
    if done.insert(tensor.to_string()) {
        graph.initializer.push(scalar_f32(&s, scale));
        graph.initializer.push(int8(&z, vec![], &[0]));
        let graph_input = graph.input.first().is_some_and(|i| i.name == tensor);
        let after = if graph_input { String::new() } else { tensor.to_string() };
        new_nodes.push((
            after.clone(),
            node("QuantizeLinear", format!("{tensor}_QuantizeLinear"), [tensor, &s, &z], &qv, None),
        ));
        new_nodes
            .push((after, node("DequantizeLinear", format!("{tensor}_DequantizeLinear"), [&qv, &s, &z], &dq, None)));
    }
    dq
}

fn node_mut<'a>(graph: &'a mut GraphProto, name: &str) -> &'a mut NodeProto {
    graph.node.iter_mut().find(|n| n.name == name).expect("planned from this graph")
}

/// The Q/DQ model for `plan`; layers named in `q.keep_fp` keep float inputs and weights.
pub fn rewrite(model: &ModelProto, plan: &Plan, q: &Quantization) -> Result<ModelProto> {
    let mut out = model.clone();
    let graph = out.graph.as_mut().ok_or_else(|| Error::Model("the model has no graph".into()))?;
    // New nodes, each with the value after whose producer it goes ("" = before everything).
    let mut new_nodes: Vec<(String, NodeProto)> = Vec::new();
    let mut done = BTreeSet::new();
    for l in plan.layers.iter().filter(|l| !q.keep_fp.contains(&l.name)) {
        let scale =
            *q.activation_scales.get(&l.input).ok_or_else(|| Error::Model(format!("no scale for `{}`", l.input)))?;
        let dq = activation_pair(graph, &mut new_nodes, &mut done, &l.input, scale);
        node_mut(graph, &l.name).input[l.input_index] = dq;
        if let Some(pad) = &l.pad {
            let dq = activation_pair(graph, &mut new_nodes, &mut done, &pad.input, scale);
            node_mut(graph, &pad.node).input[0] = dq;
        }
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
        node_mut(graph, &l.name).input[1] = wdq;
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

/// The quantization a Q/DQ model of `plan`'s graph holds, whoever wrote it (this module or Model
/// Optimizer): each quantized activation's scale and the layers left in float. A layer is
/// quantized when the input `plan` names reads a DequantizeLinear of a QuantizeLinear of that
/// activation. Fails, naming `origin`, when `quantized` is not a Q/DQ model of that graph.
pub fn read(quantized: &ModelProto, plan: &Plan, origin: &str) -> Result<Quantization> {
    let g = quantized.graph.as_ref().ok_or_else(|| Error::Model(format!("{origin}: the model has no graph")))?;
    let other = |why: String| Error::Model(format!("{origin}: {why}; it was made from another generator"));
    let nodes: HashMap<&str, &NodeProto> = g.node.iter().map(|n| (n.name.as_str(), n)).collect();
    let producer: HashMap<&str, &NodeProto> =
        g.node.iter().flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n))).collect();
    let initializers: HashMap<&str, &TensorProto> = g.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut out = Quantization::default();
    for l in &plan.layers {
        let n = nodes.get(l.name.as_str()).ok_or_else(|| other(format!("has no layer `{}`", l.name)))?;
        let input = n.input.get(l.input_index).map(String::as_str).unwrap_or_default();
        if input == l.input {
            out.keep_fp.insert(l.name.clone());
            continue;
        }
        let dq = producer.get(input).filter(|p| p.op_type == "DequantizeLinear");
        let q = dq.and_then(|d| producer.get(d.input[0].as_str())).filter(|p| p.op_type == "QuantizeLinear");
        let (Some(dq), Some(_)) = (dq, q.filter(|q| q.input.first() == Some(&l.input))) else {
            return Err(other(format!("layer `{}` reads `{input}` where `{}` was expected", l.name, l.input)));
        };
        let scale = dq.input.get(1).map(String::as_str).unwrap_or_default();
        // Model Optimizer writes float16 scales.
        let values = initializers
            .get(scale)
            .map(|t| tensor_as_f32(t))
            .transpose()?
            .filter(|v| v.len() == 1)
            .ok_or_else(|| Error::Model(format!("{origin}: the scale `{scale}` is missing or not one float")))?;
        out.activation_scales.insert(l.input.clone(), values[0]);
    }
    let convolutions = g.node.iter().filter(|n| matches!(n.op_type.as_str(), "Conv" | "ConvTranspose")).count();
    let planned = plan.layers.iter().filter(|l| l.weight.is_some()).count() + plan.float_convs.len();
    if convolutions != planned {
        return Err(other(format!("its number of convolutions is not the {planned} of this graph")));
    }
    Ok(out)
}

/// Where a Q/DQ model quantizes, whoever wrote it: what `cyclegan-calib evaluate` shows and the
/// placement test compares with Model Optimizer's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    /// QuantizeLinear nodes on activations (Model Optimizer also quantizes float weight
    /// initializers with QuantizeLinear nodes; those are not counted).
    pub activation_pairs: usize,
    /// Every (node, input index) that reads a DequantizeLinear, weights included.
    pub int8_inputs: BTreeSet<(String, usize)>,
    /// Convolutions (Conv, ConvTranspose) whose data input and weights both read a
    /// DequantizeLinear, of all convolutions.
    pub convs: (usize, usize),
    /// Adds with an input that reads a DequantizeLinear, of all Adds.
    pub adds: (usize, usize),
}

pub fn placement(model: &ModelProto) -> Result<Placement> {
    let g = model.graph.as_ref().ok_or_else(|| Error::Model("the model has no graph".into()))?;
    let initializers: BTreeSet<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
    let dequantized: BTreeSet<&str> = g
        .node
        .iter()
        .filter(|n| n.op_type == "DequantizeLinear")
        .flat_map(|n| n.output.iter().map(String::as_str))
        .collect();
    let mut p = Placement::default();
    for n in &g.node {
        let int8 = |i: usize| n.input.get(i).is_some_and(|v| dequantized.contains(v.as_str()));
        match n.op_type.as_str() {
            "QuantizeLinear" => {
                p.activation_pairs += usize::from(n.input.first().is_some_and(|i| !initializers.contains(i.as_str())));
                continue;
            }
            "DequantizeLinear" => continue,
            "Conv" | "ConvTranspose" => {
                p.convs.1 += 1;
                p.convs.0 += usize::from(int8(0) && int8(1));
            }
            "Add" => {
                p.adds.1 += 1;
                p.adds.0 += usize::from((0..n.input.len()).any(int8));
            }
            _ => {}
        }
        p.int8_inputs.extend((0..n.input.len()).filter(|i| int8(*i)).map(|i| (n.name.clone(), i)));
    }
    Ok(p)
}
