//! Which tensors of an exported generator get quantized, following TensorRT's placement for
//! convolutional networks: the data input and the weights of every Conv and ConvTranspose, and
//! the residual (skip) input of every Add so the add can fuse; InstanceNormalization, Tanh and the
//! graph output stay in floating point. [`Residual::Float`] leaves the skip inputs in float.
use std::collections::{BTreeMap, BTreeSet, HashMap};

use cyclegan_onnx::contract::{GENERATOR_OPS, QDQ_OPS};
use cyclegan_onnx::pb::{GraphProto, ModelProto, tensor_proto::DataType};

use crate::{Error, Result};

/// One quantizable layer: a convolution (data input and weights) or a residual Add (its skip
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
}

/// Whether the residual (skip) input of each Add gets Q/DQ. In a ResNet generator it carries the
/// picture through every block, so its rounding error accumulates; its threshold is also the
/// largest, as the stream grows from block to block. The Adds cost no MACs, so leaving them in
/// float keeps every convolution in INT8. (TensorRT quantizes the skip input so an Add can fuse
/// into a preceding INT8 convolution; in these generators an InstanceNormalization in float
/// precedes every Add.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Residual {
    /// TensorRT's placement: Q/DQ on the skip input too.
    #[default]
    Int8,
    Float,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub layers: Vec<Layer>,
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
    let initializers: HashMap<&str, i32> = g.initializer.iter().map(|t| (t.name.as_str(), t.data_type)).collect();
    let position: HashMap<&str, usize> =
        g.node.iter().enumerate().flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), i))).collect();
    let mut layers = Vec::new();
    for n in &g.node {
        match n.op_type.as_str() {
            "Conv" | "ConvTranspose" => {
                let (input, weight) = match (n.input.first(), n.input.get(1)) {
                    (Some(i), Some(w)) => (i.clone(), w.clone()),
                    _ => return Err(bad(format!("{} `{}` lacks inputs", n.op_type, n.name))),
                };
                if initializers.get(weight.as_str()) != Some(&(DataType::Float as i32)) {
                    return Err(bad(format!(
                        "{} `{}`: weight `{weight}` is not a float32 initializer",
                        n.op_type, n.name
                    )));
                }
                let axis = if n.op_type == "Conv" { 0 } else { 1 };
                layers.push(Layer {
                    name: n.name.clone(),
                    op: n.op_type.clone(),
                    input,
                    input_index: 0,
                    weight: Some((weight, axis)),
                });
            }
            "Add" if n.input.len() == 2 => {
                // The skip input is the one computed earlier in the graph.
                let at = |v: &str| position.get(v).copied().unwrap_or(0);
                let index = if at(&n.input[0]) <= at(&n.input[1]) { 0 } else { 1 };
                layers.push(Layer {
                    name: n.name.clone(),
                    op: n.op_type.clone(),
                    input: n.input[index].clone(),
                    input_index: index,
                    weight: None,
                });
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
    Ok(Plan { layers })
}

/// Every floating-point activation (graph input and node outputs): what the TensorRT calibration
/// cache describes.
pub fn all_activations(model: &ModelProto) -> Result<Vec<String>> {
    let g = graph(model)?;
    Ok(g.input.iter().map(|i| i.name.clone()).chain(g.node.iter().flat_map(|n| n.output.iter().cloned())).collect())
}

/// MACs of `plan`'s convolutions (Conv, ConvTranspose) at an input size, by node name.
pub struct MacShare {
    pub macs: BTreeMap<String, u64>,
    pub total: u64,
}

impl MacShare {
    pub fn new(model: &ModelProto, plan: &Plan, height: usize, width: usize) -> Result<Self> {
        let cost = cyclegan_onnx::cost::cost(model, height as i64, width as i64)?;
        let macs: BTreeMap<String, u64> = cost
            .nodes
            .into_iter()
            .filter(|n| plan.layers.iter().any(|l| l.name == n.name && l.weight.is_some()))
            .map(|n| (n.name, n.macs))
            .collect();
        let total = macs.values().sum();
        Ok(Self { macs, total })
    }

    /// The share of the MACs in INT8 with the layers `keep` in float.
    pub fn int8(&self, keep: &BTreeSet<String>) -> f64 {
        let float: u64 = self.macs.iter().filter(|(n, _)| keep.contains(*n)).map(|(_, m)| m).sum();
        (self.total - float) as f64 / self.total.max(1) as f64
    }
}
