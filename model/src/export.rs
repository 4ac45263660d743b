//! ONNX export of a generator, walking its layout: the contract's input and output `[N,3,H,W]`
//! (N, H and W dynamic), its generator operators only (plus Cast around an FP16 graph with FP32
//! I/O). Node names follow the layout's module paths (`model.10.conv_block.1.Conv`). INT8 is a
//! Q/DQ rewrite of the FP32 graph, made by `cyclegan-calib` or by `cyclegan-train export` for a
//! fine-tuned checkpoint.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use cyclegan_onnx::builder::{Dim, attr_float, attr_int, attr_ints, attr_string};
use cyclegan_onnx::contract::{CAST_OP, INPUT, INPUT_RANGE, OPSET, OUTPUT};
use cyclegan_onnx::metadata::{SOURCE_URL_KEY, set_property};
use cyclegan_onnx::pb::{AttributeProto, ModelProto};
use cyclegan_onnx::{FloatType, GeneratorMetadata, GraphBuilder, Precision};
use sha2::{Digest, Sha256};

use crate::checkpoint::{self, Recipe};
use crate::config::GeneratorConfig;
use crate::direction::Direction;
use crate::error::{Error, Result};
use crate::import::{ImportReport, match_generator};
use crate::layout::{self, Layer, Op};
use crate::onnx_weights::generator_weights;
use crate::pth::{ImportError, read_state_dict};
use crate::tensor::NamedTensor;

#[derive(Debug, Clone, Copy)]
pub struct ExportOptions {
    pub direction: Direction,
    /// Precision of weights and computation.
    pub precision: Precision,
    /// Element type of `image` and `translated`.
    pub io_type: FloatType,
}

struct Emitter<'a> {
    b: GraphBuilder,
    weights: &'a HashMap<String, NamedTensor>,
    weight_type: FloatType,
    affine_norm: bool,
}

impl Emitter<'_> {
    fn weight(&mut self, key: &str) -> Result<String> {
        let t = self.weights.get(key).ok_or_else(|| Error::Export(format!("generator has no tensor {key}")))?;
        Ok(self.b.initializer(key, &t.shape, &t.data, self.weight_type))
    }

    fn pad(&mut self, x: &str, path: &str, p: i64) -> String {
        let pads = format!("pads.reflect.{p}");
        if !self.b.has_initializer(&pads) {
            self.b.initializer_i64(&pads, &[0, 0, p, p, 0, 0, p, p]);
        }
        self.b.node("Pad", &layout::node_name(path, "Pad"), &[x, &pads], vec![attr_string("mode", "reflect")])
    }

    fn conv(&mut self, x: &str, op: &str, path: &str, attrs: Vec<AttributeProto>) -> Result<String> {
        let w = self.weight(&format!("{path}.weight"))?;
        let bias = self.weight(&format!("{path}.bias"))?;
        Ok(self.b.node(op, &layout::node_name(path, op), &[x, &w, &bias], attrs))
    }

    /// Instance norm. ONNX needs a scale and a bias: the learned ones, or shared ones and zeros.
    fn norm(&mut self, x: &str, path: &str, channels: i64) -> Result<String> {
        let (scale, bias) = if self.affine_norm {
            (self.weight(&format!("{path}.weight"))?, self.weight(&format!("{path}.bias"))?)
        } else {
            let (scale, bias) = (format!("instance_norm.scale.{channels}"), format!("instance_norm.bias.{channels}"));
            if !self.b.has_initializer(&scale) {
                self.b.initializer(&scale, &[channels], &vec![1.0; channels as usize], self.weight_type);
                self.b.initializer(&bias, &[channels], &vec![0.0; channels as usize], self.weight_type);
            }
            (scale, bias)
        };
        let eps = attr_float("epsilon", layout::NORM_EPSILON as f32);
        Ok(self.b.node(
            "InstanceNormalization",
            &layout::node_name(path, "InstanceNorm"),
            &[x, &scale, &bias],
            vec![eps],
        ))
    }

    fn layers(&mut self, mut x: String, layers: &[Layer]) -> Result<String> {
        for Layer { path, op } in layers {
            x = match op {
                Op::ReflectPad(p) => self.pad(&x, path, *p),
                // kernel_shape is optional in ONNX, but quantizers (Model Optimizer) read it to
                // decide what to quantize.
                Op::Conv { kernel, stride, padding, groups, .. } => {
                    let mut attrs = vec![
                        attr_ints("kernel_shape", &[*kernel; 2]),
                        attr_ints("strides", &[*stride; 2]),
                        attr_ints("pads", &[*padding; 4]),
                    ];
                    if *groups > 1 {
                        attrs.push(attr_int("group", *groups));
                    }
                    self.conv(&x, "Conv", path, attrs)?
                }
                Op::UpConv { .. } => {
                    let (kernel, stride, padding) = layout::UP_CONV;
                    let attrs = vec![
                        attr_ints("kernel_shape", &[kernel; 2]),
                        attr_ints("strides", &[stride; 2]),
                        attr_ints("pads", &[padding; 4]),
                        attr_ints("output_padding", &[1, 1]),
                    ];
                    self.conv(&x, "ConvTranspose", path, attrs)?
                }
                Op::Norm(channels) => self.norm(&x, path, *channels)?,
                Op::Relu => self.b.node("Relu", &layout::node_name(path, "Relu"), &[&x], vec![]),
                Op::Tanh => self.b.node("Tanh", &layout::node_name(path, "Tanh"), &[&x], vec![]),
                Op::Residual(body) => {
                    let h = self.layers(x.clone(), body)?;
                    self.b.node("Add", &layout::node_name(path, "Add"), &[&x, &h], vec![])
                }
            };
        }
        Ok(x)
    }
}

/// Builds the generator graph from weights named by the layout's paths.
pub fn generator_graph(
    cfg: &GeneratorConfig,
    weights: &HashMap<String, NamedTensor>,
    opts: &ExportOptions,
) -> Result<GraphBuilder> {
    if opts.precision == Precision::Int8 {
        return Err(Error::Export("the float graph is fp32 or fp16; INT8 is a Q/DQ rewrite of the fp32 one".into()));
    }
    let weight_type = opts.precision.weight_type();
    let mut e =
        Emitter { b: GraphBuilder::new("cyclegan_generator"), weights, weight_type, affine_norm: cfg.affine_norm };
    let dims = [Dim::Named("N"), Dim::Fixed(3), Dim::Named("H"), Dim::Named("W")];
    e.b.input(INPUT, opts.io_type.data_type(), &dims);
    e.b.output(OUTPUT, opts.io_type.data_type(), &dims);
    let cast = |e: &mut Emitter, x: &str, name: &str, to: FloatType| {
        e.b.node(CAST_OP, name, &[x], vec![attr_int("to", to.data_type() as i64)])
    };
    let mut x = INPUT.to_string();
    if opts.io_type != weight_type {
        x = cast(&mut e, &x, "input.Cast", weight_type);
    }
    x = e.layers(x, &layout::generator(cfg))?;
    if opts.io_type != weight_type {
        x = cast(&mut e, &x, "output.Cast", opts.io_type);
    }
    e.b.rename_value(&x, OUTPUT);
    Ok(e.b)
}

/// Checks that `weights` are exactly the parameters of `cfg`'s generator.
fn check_weights(cfg: &GeneratorConfig, weights: &HashMap<String, NamedTensor>, file: &Path) -> Result<()> {
    let expected = layout::parameters(cfg);
    let mut problems = Vec::new();
    for (name, shape) in &expected {
        match weights.get(name) {
            None => problems.push(format!("missing {name}")),
            Some(t) if &t.shape != shape => {
                problems.push(format!("{name}: saved {:?}, model needs {shape:?}", t.shape))
            }
            Some(_) => {}
        }
    }
    let mut unexpected: Vec<&String> = weights.keys().filter(|n| !expected.iter().any(|(e, _)| e == *n)).collect();
    unexpected.sort();
    problems.extend(unexpected.into_iter().map(|n| format!("unexpected {n}")));
    if problems.is_empty() {
        return Ok(());
    }
    problems.truncate(8);
    Err(Error::checkpoint(
        file,
        format!("does not fit the configured network ({}); check ngf/n_blocks/generator", problems.join("; ")),
    ))
}

fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    Ok(Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect())
}

/// What a generator's metadata says beyond its graph.
struct Provenance<'a> {
    source: &'a str,
    target: &'a str,
    training_resolution: u32,
    /// The file the weights were read from, and its SHA-256.
    file: &'a Path,
    sha256: &'a str,
    /// Where the file was downloaded from.
    url: Option<&'a str>,
}

/// The ONNX model of `weights` (checked against `cfg`'s layout) with its metadata.
fn model_of(
    cfg: &GeneratorConfig,
    weights: &HashMap<String, NamedTensor>,
    opts: &ExportOptions,
    from: &Provenance,
) -> Result<ModelProto> {
    check_weights(cfg, weights, from.file)?;
    let graph = generator_graph(cfg, weights, opts)?;
    let mut model = graph.finish(OPSET, "cyclegan-train", env!("CARGO_PKG_VERSION"));
    let meta = GeneratorMetadata {
        direction: opts.direction.name().into(),
        source_domain: from.source.into(),
        target_domain: from.target.into(),
        input_range: INPUT_RANGE.into(),
        training_resolution: from.training_resolution,
        generator: serde_json::to_string(cfg).expect("config serialises"),
        source_sha256: from.sha256.into(),
        precision: opts.precision,
        tool_version: env!("CARGO_PKG_VERSION").into(),
    };
    meta.write_to(&mut model);
    if let Some(url) = from.url {
        set_property(&mut model, SOURCE_URL_KEY, url);
    }
    Ok(model)
}

/// Exports one generator of a checkpoint (or run folder) as an FP32 or FP16 ONNX model with
/// metadata.
pub fn export_checkpoint(checkpoint: &Path, opts: &ExportOptions) -> Result<ModelProto> {
    let dir = checkpoint::resolve(checkpoint)?;
    let state = checkpoint::read_state::<Recipe>(&dir)?;
    let file = checkpoint::net_file(&dir, opts.direction.network());
    let weights = checkpoint::read_tensors(&file)?.into_iter().map(|t| (t.name.clone(), t)).collect();
    let (source, target) = state.config.domains(opts.direction);
    let sha256 = sha256_file(&file)?;
    let training_resolution = state.config.data.crop_size;
    let from = Provenance { source, target, training_resolution, file: &file, sha256: &sha256, url: None };
    model_of(&state.config.generator(), &weights, opts, &from)
}

/// A generator saved by PyTorch, read and matched once, to export at any precision without a
/// checkpoint in between: what a machine without PyTorch needs to run a published generator.
/// Either a `torch.save` of the reference ResNet generator's state dict (`.pth`) or its
/// `torch.onnx.export` (`.onnx`, told by the extension).
pub struct SavedGenerator {
    pub report: ImportReport,
    config: GeneratorConfig,
    weights: HashMap<String, NamedTensor>,
    file: PathBuf,
    sha256: String,
}

/// What a saved generator's metadata says that its file does not.
#[derive(Debug, Clone, Copy)]
pub struct About<'a> {
    /// The domains it translates from and to, in translation order.
    pub domains: (&'a str, &'a str),
    /// The side of the crops it was trained on.
    pub training_resolution: u32,
    /// Where it was downloaded from.
    pub url: Option<&'a str>,
}

/// Whether `path` names an ONNX file rather than a `.pth`.
pub fn is_onnx(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

impl SavedGenerator {
    /// Reads `path`; `ngf`: refuse it unless its generator has this many filters.
    pub fn read(path: &Path, ngf: Option<i64>) -> Result<Self> {
        let fail = |source| Error::Import { path: path.to_path_buf(), source };
        let tensors = if is_onnx(path) {
            let model = cyclegan_onnx::read_model(path).map_err(|e| fail(ImportError::Onnx(e)))?;
            generator_weights(&model).map_err(fail)?
        } else {
            read_state_dict(path).map_err(fail)?
        };
        let (named, report) = match_generator(tensors, ngf).map_err(fail)?;
        let config = GeneratorConfig {
            ngf: report.ngf,
            n_blocks: report.n_blocks,
            affine_norm: report.affine_norm,
            ..Recipe::default().generator()
        };
        let weights = named.into_iter().map(|t| (t.name.clone(), t)).collect();
        Ok(Self { report, config, weights, file: path.to_path_buf(), sha256: sha256_file(path)? })
    }

    /// SHA-256 of the file, as the metadata records it.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The FP32 or FP16 ONNX model with metadata; what the file does not say, `about` does.
    pub fn export(&self, opts: &ExportOptions, about: &About) -> Result<ModelProto> {
        let (source, target) = about.domains;
        let from = Provenance {
            source,
            target,
            training_resolution: about.training_resolution,
            file: &self.file,
            sha256: &self.sha256,
            url: about.url,
        };
        model_of(&self.config, &self.weights, opts, &from)
    }
}
