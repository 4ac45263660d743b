//! Which tensors of an exported generator get quantized. The placement is the one NVIDIA's Model
//! Optimizer (`modelopt.onnx.quantization`) gives these graphs for TensorRT's explicit
//! quantization, position for position:
//! - every Conv and ConvTranspose: its data input (after the reflection Pad, right before the
//!   convolution, so no reformat sits between the DequantizeLinear and the kernel) and its
//!   weights (per output channel);
//! - every residual Add: its branch input (the block's last InstanceNormalization), so the Add
//!   runs in INT8; the skip input, which carries the picture through every block, stays in
//!   float, so its rounding does not accumulate from block to block;
//! - the residual stream where a block's first Pad reads it: a second Q/DQ pair before that Pad
//!   with the convolution's scale (numerically the same, as a reflection pad only copies values),
//!   so TensorRT pads INT8 data.
//!
//! A Conv that TensorRT has no INT8 kernel for (fewer than 16 input and output channels, unless
//! [`int8_kernel`] says otherwise) stays in float, as Model Optimizer leaves it.
//! InstanceNormalization, Relu, Tanh and the graph output stay in floating point.
//! [`Residual::Float`] leaves the Adds in float.
use std::collections::{BTreeMap, BTreeSet, HashMap};

use cyclegan_onnx::contract::{GENERATOR_OPS, QDQ_OPS};
use cyclegan_onnx::pb::{GraphProto, ModelProto, NodeProto, TensorProto, tensor_proto::DataType};

use crate::{Error, Result};

/// One quantizable layer: a convolution (data input and weights) or a residual Add (its branch
/// input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// Node name, e.g. `model.10.conv_block.1.Conv`: what `--keep-fp` takes.
    pub name: String,
    pub op: String,
    /// The activation that gets a Q/DQ pair, and which input of the node it is.
    pub input: String,
    pub input_index: usize,
    /// Conv/ConvTranspose: the weight initializer and its output-channel axis (0 for Conv
    /// [Cout,Cin,kH,kW], 1 for ConvTranspose [Cin,Cout,kH,kW]).
    pub weight: Option<(String, usize)>,
    /// A convolution reading a Pad of the residual stream: the Pad, whose input gets a Q/DQ pair
    /// with the convolution's scale too.
    pub pad: Option<PadInput>,
}

/// A Pad node and the tensor it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PadInput {
    pub node: String,
    pub input: String,
}

/// Whether the residual Adds get Q/DQ on their branch input. They cost no MACs, so leaving them
/// in float keeps every convolution in INT8 at the price of an FP16/FP32 Add on TensorRT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Residual {
    /// Model Optimizer's placement for TensorRT: the Adds in INT8.
    #[default]
    Int8,
    Float,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub layers: Vec<Layer>,
    /// Convolutions left in float because TensorRT has no INT8 kernel for them.
    pub float_convs: Vec<String>,
}

/// Whether TensorRT has an INT8 kernel for a Conv with weights `[c_out, c_in / group, k, k]`, by
/// Model Optimizer's rule for TensorRT: 16 or more input or output channels each, or else a
/// grouped conv with a multiple of 8 output channels and kernels of 3 or more, or a dense conv
/// with a multiple of 8 channels on one side, a square kernel, and 16 channels on the other or
/// the graph input as its input.
pub fn int8_kernel(weight_dims: &[i64], group: i64, reads_graph_input: bool) -> bool {
    let (c_out, c_in, kernel) = (weight_dims[0], weight_dims[1], &weight_dims[2..]);
    if c_out >= 16 && c_in >= 16 {
        return true;
    }
    if group > 1 {
        return c_out % 8 == 0 && kernel.iter().all(|k| *k >= 3);
    }
    (c_out % 8 == 0 || c_in % 8 == 0)
        && (reads_graph_input || c_out >= 16 || c_in >= 16)
        && kernel.windows(2).all(|k| k[0] == k[1])
}

impl Plan {
    pub fn layer_names(&self) -> Vec<&str> {
        self.layers.iter().map(|l| l.name.as_str()).collect()
    }

    /// Activation tensors the Q/DQ model quantizes (per tensor).
    pub fn activations(&self) -> BTreeSet<String> {
        self.layers.iter().map(|l| l.input.clone()).collect()
    }

    /// The residual Adds (what [`Residual::Float`] leaves in float).
    pub fn residual_adds(&self) -> Vec<&str> {
        self.layers.iter().filter(|l| l.weight.is_none()).map(|l| l.name.as_str()).collect()
    }

    /// Checks `--keep-fp` names, listing the valid ones when one is unknown.
    pub fn check_names(&self, names: &[String]) -> Result<()> {
        for n in names {
            if self.float_convs.contains(n) {
                return Err(Error::Invalid(format!(
                    "--keep-fp {n}: already in float (TensorRT has no INT8 kernel for its channel counts)"
                )));
            }
            if !self.layers.iter().any(|l| &l.name == n) {
                return Err(Error::Invalid(format!(
                    "--keep-fp {n}: no such layer; the quantizable layers are: {}",
                    self.layer_names().join(", ")
                )));
            }
        }
        Ok(())
    }
}

fn graph(model: &ModelProto) -> Result<&GraphProto> {
    model.graph.as_ref().ok_or_else(|| Error::Model("the model has no graph".into()))
}

/// Checks that `model` is an FP32 generator exported by `cyclegan-train` (not yet quantized) and
/// finds what to quantize.
pub fn plan(model: &ModelProto, origin: &str) -> Result<Plan> {
    let g = graph(model)?;
    let bad = |m: String| Error::Model(format!("{origin}: {m}"));
    if let Some(n) = g.node.iter().find(|n| QDQ_OPS.contains(&n.op_type.as_str())) {
        return Err(bad(format!(
            "already quantized ({} node `{}`); calibrate the FP32 export instead",
            n.op_type, n.name
        )));
    }
    let unexpected: BTreeSet<&str> =
        g.node.iter().map(|n| n.op_type.as_str()).filter(|op| !GENERATOR_OPS.contains(op)).collect();
    if !unexpected.is_empty() {
        let ops: Vec<&str> = unexpected.into_iter().collect();
        return Err(bad(format!(
            "unexpected operators {} (a generator exported by `cyclegan-train export --precision fp32` has only {})",
            ops.join(", "),
            GENERATOR_OPS.join(", ")
        )));
    }
    let initializers: HashMap<&str, &TensorProto> = g.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
    let graph_inputs: BTreeSet<&str> = g.input.iter().map(|i| i.name.as_str()).collect();
    let position: HashMap<&str, usize> =
        g.node.iter().enumerate().flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), i))).collect();
    let at = |v: &str| position.get(v).copied().unwrap_or(0);
    // A residual Add's branch input is the one computed later in the graph; the other is the skip.
    let residual =
        |n: &NodeProto| (n.op_type == "Add" && n.input.len() == 2).then(|| at(&n.input[0]) < at(&n.input[1]));
    let skips: BTreeSet<&str> = g
        .node
        .iter()
        .filter_map(|n| residual(n).map(|branch_second| n.input[if branch_second { 0 } else { 1 }].as_str()))
        .collect();
    let producer: HashMap<&str, &NodeProto> =
        g.node.iter().flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n))).collect();
    let mut layers = Vec::new();
    let mut float_convs = Vec::new();
    for n in &g.node {
        match n.op_type.as_str() {
            "Conv" | "ConvTranspose" => {
                let (input, weight) = match (n.input.first(), n.input.get(1)) {
                    (Some(i), Some(w)) => (i.clone(), w.clone()),
                    _ => return Err(bad(format!("{} `{}` lacks inputs", n.op_type, n.name))),
                };
                let Some(w) = initializers.get(weight.as_str()).filter(|w| w.data_type == DataType::Float as i32)
                else {
                    return Err(bad(format!(
                        "{} `{}`: weight `{weight}` is not a float32 initializer",
                        n.op_type, n.name
                    )));
                };
                let group = n.attribute.iter().find(|a| a.name == "group").map_or(1, |a| a.i);
                if n.op_type == "Conv" && !int8_kernel(&w.dims, group, graph_inputs.contains(input.as_str())) {
                    float_convs.push(n.name.clone());
                    continue;
                }
                let axis = if n.op_type == "Conv" { 0 } else { 1 };
                let pad = producer
                    .get(input.as_str())
                    .filter(|p| p.op_type == "Pad" && p.input.first().is_some_and(|i| skips.contains(i.as_str())))
                    .map(|p| PadInput { node: p.name.clone(), input: p.input[0].clone() });
                layers.push(Layer {
                    name: n.name.clone(),
                    op: n.op_type.clone(),
                    input,
                    input_index: 0,
                    weight: Some((weight, axis)),
                    pad,
                });
            }
            "Add" => {
                if let Some(branch_second) = residual(n) {
                    let index = usize::from(branch_second);
                    layers.push(Layer {
                        name: n.name.clone(),
                        op: n.op_type.clone(),
                        input: n.input[index].clone(),
                        input_index: index,
                        weight: None,
                        pad: None,
                    });
                }
            }
            _ => {}
        }
    }
    if !layers.iter().any(|l| l.weight.is_some()) {
        return Err(bad("no Conv or ConvTranspose to quantize".into()));
    }
    if layers.iter().any(|l| l.name.is_empty()) {
        return Err(bad("unnamed nodes; export the generator with `cyclegan-train export`".into()));
    }
    Ok(Plan { layers, float_convs })
}

/// Every floating-point activation (graph input and node outputs): what the TensorRT calibration
/// cache describes.
pub fn all_activations(model: &ModelProto) -> Result<Vec<String>> {
    let g = graph(model)?;
    Ok(g.input.iter().map(|i| i.name.clone()).chain(g.node.iter().flat_map(|n| n.output.iter().cloned())).collect())
}

/// MACs of the convolutions (Conv, ConvTranspose) at an input size, by node name; those of
/// `plan.float_convs` are never INT8.
pub struct MacShare {
    pub macs: BTreeMap<String, u64>,
    pub total: u64,
    float: BTreeSet<String>,
}

impl MacShare {
    pub fn new(model: &ModelProto, plan: &Plan, height: usize, width: usize) -> Result<Self> {
        let cost = cyclegan_onnx::cost::cost(model, height as i64, width as i64)?;
        let macs: BTreeMap<String, u64> = cost
            .nodes
            .into_iter()
            .filter(|n| {
                plan.float_convs.contains(&n.name) || plan.layers.iter().any(|l| l.name == n.name && l.weight.is_some())
            })
            .map(|n| (n.name, n.macs))
            .collect();
        let total = macs.values().sum();
        let float = plan.float_convs.iter().cloned().collect();
        Ok(Self { macs, total, float })
    }

    /// The share of the MACs in INT8 with the layers `keep` in float.
    pub fn int8(&self, keep: &BTreeSet<String>) -> f64 {
        let float: u64 =
            self.macs.iter().filter(|(n, _)| keep.contains(*n) || self.float.contains(*n)).map(|(_, m)| m).sum();
        (self.total - float) as f64 / self.total.max(1) as f64
    }
}
