//! Parameters and multiply-accumulates of a generator graph at a given input size, node by node,
//! counted as `thop` (the PyPI profiler the literature's figures come from) counts the PyTorch
//! modules: a convolution costs `output elements x input channels / groups x kernel taps` (a
//! transposed one too, the stride's zeros included), an instance norm `2 x elements` (twice that
//! with a learned scale and shift), everything else nothing. It reads the ONNX graph, so it
//! counts what any tool of the chain holds: an export, an FP16 or a quantized (QDQ) model.
use std::collections::HashMap;

use crate::contract::INPUT;
use crate::pb::tensor_proto::DataType;
use crate::pb::{AttributeProto, ModelProto, NodeProto, TensorProto};
use crate::{Error, Result};

/// What one node costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCost {
    pub name: String,
    pub op: String,
    /// Its output's `[N, C, H, W]`.
    pub output: Vec<i64>,
    pub parameters: u64,
    pub macs: u64,
}

/// What a graph costs, and the nodes that cost something (convolutions and norms), in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GraphCost {
    pub nodes: Vec<NodeCost>,
    pub parameters: u64,
    pub macs: u64,
}

fn numel(shape: &[i64]) -> u64 {
    shape.iter().product::<i64>().max(0) as u64
}

fn ints<'a>(node: &'a NodeProto, name: &str) -> Option<&'a [i64]> {
    node.attribute.iter().find(|a: &&AttributeProto| a.name == name).map(|a| a.ints.as_slice())
}

fn int(node: &NodeProto, name: &str) -> Option<i64> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.i)
}

fn int64s(t: &TensorProto) -> Vec<i64> {
    if t.raw_data.is_empty() {
        t.int64_data.clone()
    } else {
        t.raw_data.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes"))).collect()
    }
}

/// Whether every value of a float32 or float16 initializer is `value` (None: not readable here).
fn all_equal(t: &TensorProto, value: f32) -> Option<bool> {
    if t.data_type == DataType::Float as i32 {
        return crate::convert::tensor_f32(t).ok().map(|v| v.iter().all(|&x| x == value));
    }
    if t.data_type == DataType::Float16 as i32 {
        let bits = half::f16::from_f32(value).to_bits();
        return Some(if t.raw_data.is_empty() {
            t.int32_data.iter().all(|&x| x as u16 == bits)
        } else {
            t.raw_data.chunks_exact(2).all(|b| u16::from_le_bytes([b[0], b[1]]) == bits)
        });
    }
    None
}

/// Counts `model` on one `height` x `width` image.
pub fn cost(model: &ModelProto, height: i64, width: i64) -> Result<GraphCost> {
    let graph = model.graph.as_ref().ok_or(Error::NoGraph)?;
    let bad = |node: &NodeProto, why: &str| Error::Contract(format!("node {} ({}): {why}", node.name, node.op_type));
    let initializers: HashMap<&str, &TensorProto> = graph.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut shapes: HashMap<&str, Vec<i64>> =
        graph.initializer.iter().map(|t| (t.name.as_str(), t.dims.clone())).collect();
    shapes.insert(INPUT, vec![1, 3, height, width]);
    let mut total = GraphCost::default();
    for node in &graph.node {
        let shape_of = |i: usize| {
            node.input
                .get(i)
                .and_then(|name| shapes.get(name.as_str()))
                .ok_or_else(|| bad(node, "an input of unknown shape"))
        };
        let x = shape_of(0)?.clone();
        let (output, parameters, macs) = match node.op_type.as_str() {
            "Conv" | "ConvTranspose" => {
                let w = shape_of(1)?.clone();
                if x.len() != 4 || w.len() != 4 {
                    return Err(bad(node, "not a 2-D convolution"));
                }
                let bias = if node.input.len() > 2 { numel(shape_of(2)?) } else { 0 };
                let groups = int(node, "group").unwrap_or(1).max(1);
                let strides = ints(node, "strides").unwrap_or(&[1, 1]).to_vec();
                let pads = ints(node, "pads").unwrap_or(&[0, 0, 0, 0]).to_vec();
                let (kh, kw) = (w[2], w[3]);
                let (c_out, h, w_out) = if node.op_type == "Conv" {
                    (
                        w[0],
                        (x[2] + pads[0] + pads[2] - kh) / strides[0] + 1,
                        (x[3] + pads[1] + pads[3] - kw) / strides[1] + 1,
                    )
                } else {
                    let extra = ints(node, "output_padding").unwrap_or(&[0, 0]).to_vec();
                    (
                        w[1] * groups,
                        (x[2] - 1) * strides[0] - pads[0] - pads[2] + kh + extra[0],
                        (x[3] - 1) * strides[1] - pads[1] - pads[3] + kw + extra[1],
                    )
                };
                let output = vec![x[0], c_out, h, w_out];
                let macs = numel(&output) * (x[1] / groups) as u64 * (kh * kw) as u64;
                (output, numel(&w) + bias, macs)
            }
            "InstanceNormalization" => {
                // A scale of ones and a shift of zeros is a norm without learned parameters (the
                // export's form of PyTorch's `affine=False`).
                let identity = |i: usize, v: f32| {
                    node.input.get(i).and_then(|n| initializers.get(n.as_str())).and_then(|t| all_equal(t, v))
                };
                let affine = !(identity(1, 1.0) == Some(true) && identity(2, 0.0) == Some(true));
                let parameters = if affine { numel(shape_of(1)?) + numel(shape_of(2)?) } else { 0 };
                let macs = 2 * numel(&x) * if affine { 2 } else { 1 };
                (x, parameters, macs)
            }
            "Pad" => {
                let pads = node.input.get(1).and_then(|n| initializers.get(n.as_str())).map(|t| int64s(t));
                let pads = pads.filter(|p| p.len() == 8).ok_or_else(|| bad(node, "pads are not a constant of 8"))?;
                let output = x.iter().enumerate().map(|(i, d)| d + pads[i] + pads[i + 4]).collect();
                (output, 0, 0)
            }
            _ => (x, 0, 0),
        };
        if parameters > 0 || macs > 0 {
            total.parameters += parameters;
            total.macs += macs;
            total.nodes.push(NodeCost {
                name: node.name.clone(),
                op: node.op_type.clone(),
                output: output.clone(),
                parameters,
                macs,
            });
        }
        for name in &node.output {
            shapes.insert(name.as_str(), output.clone());
        }
    }
    Ok(total)
}

impl GraphCost {
    /// A table a person reads: one row per node that costs something, then the total.
    pub fn table(&self, height: i64, width: i64) -> String {
        let mut out = format!("{:<34} {:<22} {:>18} {:>12} {:>10}\n", "node", "op", "output", "parameters", "MMAC");
        for n in &self.nodes {
            let shape = n.output.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x");
            out.push_str(&format!(
                "{:<34} {:<22} {:>18} {:>12} {:>10.1}\n",
                n.name,
                n.op,
                shape,
                n.parameters,
                n.macs as f64 / 1e6
            ));
        }
        out.push_str(&format!(
            "total: {} parameters, {:.2} GMAC at {width}x{height} (thop's convention)\n",
            self.parameters,
            self.macs as f64 / 1e9
        ));
        out
    }
}
