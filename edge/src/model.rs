//! An exported generator as the edge runtime sees it: the ONNX bytes plus what its metadata
//! says, checked against what the runtime feeds it.
use std::borrow::Cow;
use std::path::Path;

use cyclegan_onnx::metadata::GeneratorMetadata;
use cyclegan_onnx::pb::{ModelProto, tensor_proto::DataType};

use crate::{Error, Result};

/// Name under which the embedded demo generator is reported (`model=` unset).
pub const BUNDLED_ORIGIN: &str = "bundled summer2winter-demo";

/// The demo generator trained by `cyclegan-train` on the synthetic summer->winter dataset
/// (models/summer2winter-demo/README.md says how it was made and what it scores).
static BUNDLED_ONNX: &[u8] = include_bytes!("../../models/summer2winter-demo/generator.onnx");

/// The range every generator exported by `cyclegan-train` works in, and the one we feed.
pub const INPUT_RANGE: &str = "[-1,1]";

/// Element type of the graph's `image` input and `translated` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorType {
    F32,
    F16,
}

#[derive(Debug, Clone)]
pub struct Model {
    /// Where it came from, for messages: a path or [`BUNDLED_ORIGIN`].
    pub origin: String,
    pub bytes: Cow<'static, [u8]>,
    pub metadata: GeneratorMetadata,
    pub io_type: TensorType,
    /// Holds QuantizeLinear/DequantizeLinear nodes (written by the calibration tool).
    pub quantized: bool,
}

/// File names TensorRT engines usually get (trtexec's `--saveEngine` examples, DeepStream).
const ENGINE_EXTENSIONS: [&str; 3] = ["engine", "plan", "trt"];

impl Model {
    /// The embedded demo generator.
    pub fn bundled() -> Result<Self> {
        Self::from_bytes(Cow::Borrowed(BUNDLED_ONNX), BUNDLED_ORIGIN)
    }

    /// A generator file, or the bundled one when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let Some(path) = path else { return Self::bundled() };
        let origin = path.display().to_string();
        let bad = |reason: String| Error::BadModel { path: origin.clone(), reason };
        if path.extension().and_then(|e| e.to_str()).is_some_and(|e| ENGINE_EXTENSIONS.contains(&e)) {
            return Err(bad("this is a TensorRT engine, not an ONNX generator: an engine only loads on the GPU and \
                 TensorRT version that built it (one built on an x86_64 desktop will not run on a Jetson). \
                 Copy the .onnx instead and give it to --model on the device"
                .into()));
        }
        let size = std::fs::metadata(path).map_err(|e| bad(format!("cannot read: {e}")))?.len();
        if size > cyclegan_onnx::io::MAX_MODEL_BYTES {
            return Err(bad(format!("{size} bytes is larger than any generator")));
        }
        let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot read: {e}")))?;
        Self::from_bytes(Cow::Owned(bytes), &origin)
    }

    pub fn from_bytes(bytes: Cow<'static, [u8]>, origin: &str) -> Result<Self> {
        let model = cyclegan_onnx::io::decode_model(&bytes)
            .map_err(|reason| Error::BadModel { path: origin.to_string(), reason })?;
        Self::checked(model, bytes, origin.to_string())
    }

    fn checked(model: ModelProto, bytes: Cow<'static, [u8]>, origin: String) -> Result<Self> {
        let bad = |reason: String| Error::BadModel { path: origin.clone(), reason };
        let metadata = GeneratorMetadata::read_from(&model).map_err(|e| {
            bad(format!(
                "{e}; export generators with `cyclegan-train export` (or `cyclegan-train import` a .pth first)"
            ))
        })?;
        if metadata.input_range.replace(' ', "") != INPUT_RANGE {
            return Err(bad(format!(
                "its metadata says the input range is {}, but the edge runtime feeds {INPUT_RANGE}; \
                 re-export it with `cyclegan-train export`",
                metadata.input_range
            )));
        }
        let graph = model.graph.as_ref().expect("decode_model checks the graph");
        let elem_type = |name: &str, values: &[cyclegan_onnx::pb::ValueInfoProto]| -> Result<TensorType> {
            let value = values.iter().find(|v| v.name == name).ok_or_else(|| {
                bad(format!("the graph has no `{name}` tensor (inputs/outputs must be `image` -> `translated`)"))
            })?;
            let tensor = match value.r#type.as_ref().and_then(|t| t.value.as_ref()) {
                Some(cyclegan_onnx::pb::type_proto::Value::TensorType(t)) => t,
                _ => return Err(bad(format!("`{name}` is not a tensor"))),
            };
            let rank = tensor.shape.as_ref().map(|s| s.dim.len());
            if rank != Some(4) {
                return Err(bad(format!("`{name}` must be a 4-D [N,3,H,W] tensor")));
            }
            match DataType::try_from(tensor.elem_type) {
                Ok(DataType::Float) => Ok(TensorType::F32),
                Ok(DataType::Float16) => Ok(TensorType::F16),
                _ => Err(bad(format!("`{name}` has element type {}; float32 or float16 expected", tensor.elem_type))),
            }
        };
        let io_type = elem_type("image", &graph.input)?;
        if elem_type("translated", &graph.output)? != io_type {
            return Err(bad("`image` and `translated` have different element types".into()));
        }
        let quantized = graph.node.iter().any(|n| n.op_type == "QuantizeLinear" || n.op_type == "DequantizeLinear");
        Ok(Self { origin, bytes, metadata, io_type, quantized })
    }

    /// One line for logs: `summer -> winter (a2b), fp16, trained at 128`.
    pub fn describe(&self) -> String {
        let m = &self.metadata;
        let precision = if self.quantized { "int8 (Q/DQ)" } else { m.precision.as_str() };
        format!(
            "{}: {} -> {} ({}), {precision}, trained at {}",
            self.origin, m.source_domain, m.target_domain, m.direction, m.training_resolution
        )
    }
}
