//! A small builder for ONNX graphs in the standard domain.
use crate::contract::FloatType;
use crate::pb::attribute_proto::AttributeType;
use crate::pb::tensor_proto::DataType;
use crate::pb::tensor_shape_proto::{Dimension, dimension};
use crate::pb::type_proto::{self, Value};
use crate::pb::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};

/// A dimension: fixed or symbolic (dynamic).
#[derive(Debug, Clone)]
pub enum Dim {
    Fixed(i64),
    Named(&'static str),
}

pub fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Int as i32, i: v, ..Default::default() }
}

pub fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Ints as i32, ints: v.to_vec(), ..Default::default() }
}

pub fn attr_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Float as i32, f: v, ..Default::default() }
}

pub fn attr_string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::String as i32,
        s: v.as_bytes().to_vec(),
        ..Default::default()
    }
}

fn value_info(name: &str, elem: DataType, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Fixed(v) => dimension::Value::DimValue(*v),
                Dim::Named(s) => dimension::Value::DimParam((*s).into()),
            }),
            ..Default::default()
        })
        .collect();
    let tensor = type_proto::Tensor { elem_type: elem as i32, shape: Some(TensorShapeProto { dim }) };
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto { value: Some(Value::TensorType(tensor)), ..Default::default() }),
        ..Default::default()
    }
}

#[derive(Debug, Default)]
pub struct GraphBuilder {
    graph: GraphProto,
}

impl GraphBuilder {
    pub fn new(name: &str) -> Self {
        Self { graph: GraphProto { name: name.into(), ..Default::default() } }
    }

    pub fn input(&mut self, name: &str, elem: DataType, dims: &[Dim]) {
        self.graph.input.push(value_info(name, elem, dims));
    }

    pub fn output(&mut self, name: &str, elem: DataType, dims: &[Dim]) {
        self.graph.output.push(value_info(name, elem, dims));
    }

    /// A float initializer stored as `elem` (FP16 values are rounded to nearest).
    pub fn initializer(&mut self, name: &str, dims: &[i64], data: &[f32], elem: FloatType) -> String {
        assert_eq!(dims.iter().product::<i64>() as usize, data.len(), "{name}: dims do not match the data");
        let raw_data = match elem {
            FloatType::F32 => data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            FloatType::F16 => data.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect(),
        };
        self.graph.initializer.push(TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: elem.data_type() as i32,
            raw_data,
            ..Default::default()
        });
        name.into()
    }

    pub fn initializer_i64(&mut self, name: &str, data: &[i64]) -> String {
        self.graph.initializer.push(TensorProto {
            name: name.into(),
            dims: vec![data.len() as i64],
            data_type: DataType::Int64 as i32,
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name.into()
    }

    pub fn has_initializer(&self, name: &str) -> bool {
        self.graph.initializer.iter().any(|t| t.name == name)
    }

    /// Adds a node whose single output is named after the node; returns that name.
    pub fn node(&mut self, op: &str, name: &str, inputs: &[&str], attributes: Vec<AttributeProto>) -> String {
        let output = format!("{name}_out");
        self.graph.node.push(NodeProto {
            op_type: op.into(),
            name: name.into(),
            input: inputs.iter().map(|s| (*s).into()).collect(),
            output: vec![output.clone()],
            attribute: attributes,
            ..Default::default()
        });
        output
    }

    /// Renames the value `from` to `to` everywhere (to give a graph output its public name).
    pub fn rename_value(&mut self, from: &str, to: &str) {
        for node in &mut self.graph.node {
            for v in node.input.iter_mut().chain(node.output.iter_mut()) {
                if v == from {
                    *v = to.into();
                }
            }
        }
    }

    pub fn finish(self, opset: i64, producer: &str, version: &str) -> ModelProto {
        ModelProto {
            // IR 8 is read by every ONNX Runtime and TensorRT release we target.
            ir_version: 8,
            opset_import: vec![OperatorSetIdProto { domain: String::new(), version: opset }],
            producer_name: producer.into(),
            producer_version: version.into(),
            graph: Some(self.graph),
            ..Default::default()
        }
    }
}
