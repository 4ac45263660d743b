//! ONNX export of a generator: input `image` `[N,3,H,W]` in [-1,1], output `translated`, with N,
//! H and W dynamic; standard-domain ops only (Pad reflect, Conv, ConvTranspose,
//! InstanceNormalization, Relu, Add, Tanh, and Cast around an FP16 graph with FP32 I/O).
//! Node names follow the reference module paths (`model.10.conv_block.1.Conv`).
use std::collections::HashMap;
use std::path::Path;

use cyclegan_onnx::builder::{Dim, attr_int, attr_ints, attr_string};
use cyclegan_onnx::pb::ModelProto;
use cyclegan_onnx::{GeneratorMetadata, GraphBuilder, Precision};
use sha2::{Digest, Sha256};
use tch::Tensor;

use crate::checkpoint;
use crate::error::{Error, Result};
use crate::model::GeneratorConfig;
use crate::translate::{Direction, Translator};

pub const OPSET: i64 = 17;

#[derive(Debug, Clone, Copy)]
pub struct ExportOptions {
    pub direction: Direction,
    /// Precision of weights and computation.
    pub precision: Precision,
    /// Element type of `image` and `translated`.
    pub io_precision: Precision,
}

struct Emitter<'a> {
    b: GraphBuilder,
    weights: &'a HashMap<String, Tensor>,
    precision: Precision,
    affine_norm: bool,
}

impl Emitter<'_> {
    fn weight(&mut self, key: &str) -> Result<String> {
        let t = self.weights.get(key).ok_or_else(|| Error::Export(format!("generator has no tensor {key}")))?;
        let data = Vec::<f32>::try_from(t.to_kind(tch::Kind::Float).flatten(0, -1))?;
        Ok(self.b.initializer(key, &t.size(), &data, self.precision))
    }

    fn pad(&mut self, x: &str, name: &str, p: i64) -> String {
        let pads = format!("pads.reflect.{p}");
        if !self.b.has_initializer(&pads) {
            self.b.initializer_i64(&pads, &[0, 0, p, p, 0, 0, p, p]);
        }
        self.b.node("Pad", &format!("{name}.Pad"), &[x, &pads], vec![attr_string("mode", "reflect")])
    }

    fn conv(&mut self, x: &str, key: &str, stride: i64, pad: i64) -> Result<String> {
        let w = self.weight(&format!("{key}.weight"))?;
        let bias = self.weight(&format!("{key}.bias"))?;
        let attrs = vec![attr_ints("strides", &[stride, stride]), attr_ints("pads", &[pad, pad, pad, pad])];
        Ok(self.b.node("Conv", &format!("{key}.Conv"), &[x, &w, &bias], attrs))
    }

    fn up_conv(&mut self, x: &str, key: &str) -> Result<String> {
        let w = self.weight(&format!("{key}.weight"))?;
        let bias = self.weight(&format!("{key}.bias"))?;
        let attrs =
            vec![attr_ints("strides", &[2, 2]), attr_ints("pads", &[1, 1, 1, 1]), attr_ints("output_padding", &[1, 1])];
        Ok(self.b.node("ConvTranspose", &format!("{key}.ConvTranspose"), &[x, &w, &bias], attrs))
    }

    /// Instance norm. ONNX needs a scale and a bias: the learned ones, or shared ones and zeros.
    fn norm(&mut self, x: &str, name: &str, channels: i64) -> Result<String> {
        let (scale, bias) = if self.affine_norm {
            (self.weight(&format!("{name}.weight"))?, self.weight(&format!("{name}.bias"))?)
        } else {
            let (scale, bias) = (format!("instance_norm.scale.{channels}"), format!("instance_norm.bias.{channels}"));
            if !self.b.has_initializer(&scale) {
                self.b.initializer(&scale, &[channels], &vec![1.0; channels as usize], self.precision);
                self.b.initializer(&bias, &[channels], &vec![0.0; channels as usize], self.precision);
            }
            (scale, bias)
        };
        let eps = cyclegan_onnx::builder::attr_float("epsilon", 1e-5);
        Ok(self.b.node("InstanceNormalization", &format!("{name}.InstanceNorm"), &[x, &scale, &bias], vec![eps]))
    }

    fn unary(&mut self, op: &str, x: &str, name: &str) -> String {
        self.b.node(op, &format!("{name}.{op}"), &[x], vec![])
    }
}

/// Builds the generator graph from weights named as in `resnet_generator`.
pub fn generator_graph(
    cfg: &GeneratorConfig,
    weights: &HashMap<String, Tensor>,
    opts: &ExportOptions,
) -> Result<GraphBuilder> {
    let mut e = Emitter {
        b: GraphBuilder::new("cyclegan_generator"),
        weights,
        precision: opts.precision,
        affine_norm: cfg.affine_norm,
    };
    let dims = [Dim::Named("N"), Dim::Fixed(3), Dim::Named("H"), Dim::Named("W")];
    e.b.input("image", opts.io_precision.data_type(), &dims);
    e.b.output("translated", opts.io_precision.data_type(), &dims);
    let cast = |e: &mut Emitter, x: &str, name: &str, to: Precision| {
        e.b.node("Cast", name, &[x], vec![attr_int("to", to.data_type() as i64)])
    };
    let mut x = "image".to_string();
    if opts.io_precision != opts.precision {
        x = cast(&mut e, &x, "input.Cast", opts.precision);
    }

    x = e.pad(&x, "model.0", 3);
    x = e.conv(&x, "model.1", 1, 0)?;
    x = e.norm(&x, "model.2", cfg.ngf)?;
    x = e.unary("Relu", &x, "model.3");
    let (mut idx, mut ch) = (4, cfg.ngf);
    for _ in 0..2 {
        x = e.conv(&x, &format!("model.{idx}"), 2, 1)?;
        ch *= 2;
        x = e.norm(&x, &format!("model.{}", idx + 1), ch)?;
        x = e.unary("Relu", &x, &format!("model.{}", idx + 2));
        idx += 3;
    }
    for _ in 0..cfg.n_blocks {
        let block = format!("model.{idx}.conv_block");
        let mut h = e.pad(&x, &format!("{block}.0"), 1);
        h = e.conv(&h, &format!("{block}.1"), 1, 0)?;
        h = e.norm(&h, &format!("{block}.2"), ch)?;
        h = e.unary("Relu", &h, &format!("{block}.3"));
        h = e.pad(&h, &format!("{block}.4"), 1);
        h = e.conv(&h, &format!("{block}.5"), 1, 0)?;
        h = e.norm(&h, &format!("{block}.6"), ch)?;
        x = e.b.node("Add", &format!("model.{idx}.Add"), &[&x, &h], vec![]);
        idx += 1;
    }
    for _ in 0..2 {
        x = e.up_conv(&x, &format!("model.{idx}"))?;
        ch /= 2;
        x = e.norm(&x, &format!("model.{}", idx + 1), ch)?;
        x = e.unary("Relu", &x, &format!("model.{}", idx + 2));
        idx += 3;
    }
    x = e.pad(&x, &format!("model.{idx}"), 3);
    x = e.conv(&x, &format!("model.{}", idx + 1), 1, 0)?;
    x = e.unary("Tanh", &x, &format!("model.{}", idx + 2));
    if opts.io_precision != opts.precision {
        x = cast(&mut e, &x, "output.Cast", opts.io_precision);
    }
    e.b.rename_value(&x, "translated");
    Ok(e.b)
}

fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    Ok(Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect())
}

/// Exports one generator of a checkpoint (or run folder) as an ONNX model with metadata.
pub fn export_generator(checkpoint: &Path, opts: &ExportOptions) -> Result<ModelProto> {
    let dir = checkpoint::resolve(checkpoint)?;
    let state = checkpoint::read_state(&dir)?;
    let translator = Translator::load(&dir, opts.direction, tch::Device::Cpu)?;
    let weights = translator.variables();
    let cfg = crate::trainer::CycleGan::generator_config(&state.config);
    let graph = generator_graph(&cfg, &weights, opts)?;
    let mut model = graph.finish(OPSET, "cyclegan-train", env!("CARGO_PKG_VERSION"));
    let (source, target) = match opts.direction {
        Direction::A2b => (&state.config.data.domain_a, &state.config.data.domain_b),
        Direction::B2a => (&state.config.data.domain_b, &state.config.data.domain_a),
    };
    let meta = GeneratorMetadata {
        direction: opts.direction.name().into(),
        source_domain: source.clone(),
        target_domain: target.clone(),
        input_range: "[-1,1]".into(),
        training_resolution: state.config.data.crop_size,
        generator: serde_json::to_string(&cfg).expect("config serialises"),
        source_sha256: sha256_file(&dir.join(format!("{}.safetensors", opts.direction.network())))?,
        precision: opts.precision.name().into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
    };
    meta.write_to(&mut model);
    Ok(model)
}
