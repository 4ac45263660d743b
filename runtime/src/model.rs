//! An exported generator as the edge runtime sees it: the ONNX bytes plus what its metadata
//! says, checked against what the runtime feeds it.
use std::borrow::Cow;
use std::path::Path;

use cyclegan_onnx::FloatType;
use cyclegan_onnx::cost::GraphCost;
use cyclegan_onnx::metadata::GeneratorMetadata;

use crate::{Error, Result};

/// Name under which the embedded demo generator is reported (`model=` unset).
pub const BUNDLED_ORIGIN: &str = "bundled summer2winter-demo";

/// The demo generator trained by `cyclegan-train` on the synthetic summer->winter dataset
/// (models/summer2winter-demo/README.md says how it was made and what it scores).
static BUNDLED_ONNX: &[u8] = include_bytes!("../../models/summer2winter-demo/generator.onnx");

#[derive(Debug, Clone)]
pub struct Model {
    /// Where it came from, for messages: a path or [`BUNDLED_ORIGIN`].
    pub origin: String,
    pub bytes: Cow<'static, [u8]>,
    pub metadata: GeneratorMetadata,
    /// Element type of the graph's input and output.
    pub io_type: FloatType,
    /// Holds QuantizeLinear/DequantizeLinear nodes (written by the calibration tool).
    pub quantized: bool,
    /// Parameters and MACs at the training resolution (`cyclegan_onnx::cost`).
    pub cost: GraphCost,
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
        let bytes = cyclegan_onnx::io::read_bounded(path)
            .map_err(|source| Error::Model { path: origin.clone(), source: Box::new(source) })?;
        Self::from_bytes(Cow::Owned(bytes), &origin)
    }

    pub fn from_bytes(bytes: Cow<'static, [u8]>, origin: &str) -> Result<Self> {
        let bad = |source| Error::Model { path: origin.to_string(), source: Box::new(source) };
        let model = cyclegan_onnx::io::decode_model(&bytes).map_err(bad)?;
        let info = cyclegan_onnx::validate_generator(&model).map_err(bad)?;
        let side = info.metadata.training_resolution.max(4) as i64;
        let cost = cyclegan_onnx::cost::cost(&model, side, side).map_err(bad)?;
        Ok(Self {
            cost,
            origin: origin.to_string(),
            bytes,
            quantized: info.quantized(),
            io_type: info.io_type,
            metadata: info.metadata,
        })
    }

    /// One line for logs: `summer -> winter (a2b), fp16, trained at 128, 0.50 M parameters,
    /// 0.47 GMAC at 128x128`.
    pub fn describe(&self) -> String {
        let m = &self.metadata;
        let precision = if self.quantized { "int8 (Q/DQ)" } else { m.precision.name() };
        let r = m.training_resolution;
        format!(
            "{}: {} -> {} ({}), {precision}, trained at {r}, {:.2} M parameters, {:.2} GMAC at {r}x{r}",
            self.origin,
            m.source_domain,
            m.target_domain,
            m.direction,
            self.cost.parameters as f64 / 1e6,
            self.cost.macs as f64 / 1e9
        )
    }
}
