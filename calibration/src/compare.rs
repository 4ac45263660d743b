//! `cyclegan-calib evaluate`: INT8 models of one generator (calibrated with any method, or
//! fine-tuned by `cyclegan-train qat`, or quantized by NVIDIA's Model Optimizer) side by side
//! against its FP32 export on images none of them was calibrated or fine-tuned on: where the Q/DQ
//! pairs are, what stays in float, the INT8 share of the convolution MACs, PSNR and SSIM vs FP32,
//! and ONNX Runtime's CPU latency.
use std::path::{Path, PathBuf};
use std::time::Instant;

use cyclegan_onnx::contract::QDQ_OPS;
use cyclegan_onnx::metadata::{CALIBRATION_KEY, KEY_PREFIX, PRECISION_KEY, property, set_property};
use cyclegan_onnx::pb::ModelProto;
use cyclegan_onnx::{GeneratorMetadata, Precision};
use cyclegan_runtime::backend::Backend;
use cyclegan_runtime::preprocess::{InferenceSize, Preprocessor};

use crate::evaluate::{mean_psnr, mean_ssim, outputs};
use crate::graph::{self, MacShare};
use crate::images;
use crate::observe::open;
use crate::qdq;
use crate::{Error, Result};

/// The side of the square input the latency is measured at.
pub const LATENCY_SIDE: usize = 256;
const LATENCY_WARMUP: usize = 2;

#[derive(Debug, Clone)]
pub struct Row {
    pub model: String,
    /// `fp32`, `fp16`, or the INT8 model's method (`mse`, `entropy`, `qat`, ...).
    pub method: String,
    pub kept_fp: usize,
    pub layers: usize,
    pub placement: qdq::Placement,
    pub int8_mac_share: f64,
    pub psnr_db: f64,
    pub ssim: f64,
    /// Median ONNX Runtime CPU time of one LATENCY_SIDE² frame (NaN: not measured).
    pub ms: f64,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// The FP32 export everything is measured against.
    pub reference: PathBuf,
    pub models: Vec<PathBuf>,
    pub images: PathBuf,
    /// Images to use at most.
    pub num: usize,
    pub size: InferenceSize,
    pub threads: usize,
    /// Timed runs per model, after two warm-up runs (0: no latency).
    pub latency_runs: usize,
}

fn median_ms(model: &ModelProto, origin: &str, opts: &Options) -> Result<f64> {
    if opts.latency_runs == 0 {
        return Ok(f64::NAN);
    }
    let mut backend = open(model, origin, opts.threads)?;
    let input = vec![0.1f32; 3 * LATENCY_SIDE * LATENCY_SIDE];
    let shape = [1, 3, LATENCY_SIDE, LATENCY_SIDE];
    let mut out = Vec::new();
    for _ in 0..LATENCY_WARMUP {
        backend.run(&input, shape, &mut out)?;
    }
    let mut times: Vec<f64> = (0..opts.latency_runs)
        .map(|_| {
            let t = Instant::now();
            backend.run(&input, shape, &mut out).map(|_| t.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<std::result::Result<_, _>>()?;
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// An INT8 model to compare and its method: ours (the method its calibration record names), or a
/// Q/DQ model of the same graph without our metadata, such as Model Optimizer writes (named by its
/// file, and given the reference's metadata so that the runtime opens it).
fn int8_model(mut model: ModelProto, reference: &ModelProto, path: &Path) -> Result<(ModelProto, String)> {
    let name = path.display().to_string();
    let ours = model.metadata_props.iter().any(|p| p.key.starts_with(KEY_PREFIX));
    if !ours {
        let quantized =
            model.graph.as_ref().is_some_and(|g| g.node.iter().any(|n| QDQ_OPS.contains(&n.op_type.as_str())));
        if !quantized {
            return Err(Error::Invalid(format!(
                "--int8 {name}: no Q/DQ nodes and no cyclegan metadata; give an INT8 model"
            )));
        }
        model.metadata_props = reference.metadata_props.clone();
        set_property(&mut model, PRECISION_KEY, Precision::Int8.name());
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or(name);
        return Ok((model, stem));
    }
    let meta =
        GeneratorMetadata::read_from(&model).map_err(|e| Error::Onnx { flag: "--int8", source: e.in_file(path) })?;
    if meta.precision != Precision::Int8 {
        return Err(Error::Invalid(format!("--int8 {name}: a {} model, not a Q/DQ one", meta.precision)));
    }
    let method = property(&model, CALIBRATION_KEY)
        .and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok())
        .and_then(|r| r.get("method").and_then(|m| m.as_str()).map(String::from))
        .unwrap_or_else(|| "?".into());
    Ok((model, method))
}

/// The rows for the FP32 reference, its FP16 graph and each of `opts.models`.
pub fn compare(opts: &Options) -> Result<Vec<Row>> {
    let model_error = |flag: &'static str| move |source: cyclegan_onnx::Error| Error::Onnx { flag, source };
    let reference = cyclegan_onnx::io::read_model(&opts.reference).map_err(model_error("--model"))?;
    let info = cyclegan_onnx::validate_generator(&reference)
        .map_err(|e| model_error("--model")(e.in_file(&opts.reference)))?;
    if info.precision != Precision::Fp32 {
        return Err(Error::Model(format!(
            "--model {}: a {} graph; compare against the FP32 export",
            opts.reference.display(),
            info.precision
        )));
    }
    let plan = graph::plan(&reference, &opts.reference.display().to_string())?;
    let files = images::list(&opts.images)?;
    let mut pre = Preprocessor::default();
    let samples: Vec<_> = files
        .iter()
        .take(opts.num)
        .map(|p| images::load(p, opts.size, info.metadata.training_resolution, &mut pre))
        .collect::<Result<_>>()?;
    let share = MacShare::new(&reference, &plan, LATENCY_SIDE, LATENCY_SIDE)?;
    let origin = opts.reference.display().to_string();
    let truth = outputs(&mut open(&reference, &origin, opts.threads)?, &samples)?;
    let layers = plan.layers.len();
    let float_placement = qdq::placement(&reference)?;
    let mut rows = vec![Row {
        model: origin.clone(),
        method: "fp32".into(),
        kept_fp: layers,
        layers,
        placement: float_placement.clone(),
        int8_mac_share: 0.0,
        psnr_db: 100.0,
        ssim: 1.0,
        ms: median_ms(&reference, &origin, opts)?,
    }];
    let fp16 = cyclegan_onnx::convert::to_fp16(&reference)?;
    let out = outputs(&mut open(&fp16, "FP16 graph", opts.threads)?, &samples)?;
    rows.push(Row {
        model: format!("{origin} as FP16"),
        method: "fp16".into(),
        kept_fp: layers,
        layers,
        placement: float_placement,
        int8_mac_share: 0.0,
        psnr_db: mean_psnr(&out, &truth),
        ssim: mean_ssim(&out, &truth, &samples),
        ms: median_ms(&fp16, "FP16 graph", opts)?,
    });
    for path in &opts.models {
        let name = path.display().to_string();
        let model = cyclegan_onnx::io::read_model(path).map_err(model_error("--int8"))?;
        let (model, method) = int8_model(model, &reference, path)?;
        let q = qdq::read(&model, &plan, &name)?;
        let out = outputs(&mut open(&model, &name, opts.threads)?, &samples)?;
        rows.push(Row {
            model: name.clone(),
            method,
            kept_fp: q.keep_fp.len(),
            layers,
            placement: qdq::placement(&model)?,
            int8_mac_share: share.int8(&q.keep_fp),
            psnr_db: mean_psnr(&out, &truth),
            ssim: mean_ssim(&out, &truth, &samples),
            ms: median_ms(&model, &name, opts)?,
        });
    }
    Ok(rows)
}

/// The rows as a Markdown table, with each model's latency as a ratio to FP32's.
pub fn table(rows: &[Row], images: &Path, count: usize) -> String {
    let mut out = format!(
        "{count} images of {} vs the FP32 model; ONNX Runtime CPU ms at {LATENCY_SIDE}x{LATENCY_SIDE}\n\n",
        images.display()
    );
    out.push_str(
        "| model | method | Q/DQ on activations | convs INT8 | residual Adds INT8 | layers in float | INT8 share of MACs \
         | PSNR vs FP32 (dB) | SSIM | ORT CPU ms | vs FP32 |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|\n");
    let fp32_ms = rows.first().map_or(1.0, |r| r.ms);
    for r in rows {
        let latency = if r.ms.is_nan() { "- | -".to_string() } else { format!("{:.1} | {:.2}x", r.ms, r.ms / fp32_ms) };
        let p = &r.placement;
        out.push_str(&format!(
            "| {} | {} | {} | {} of {} | {} of {} | {} of {} | {:.1} % | {:.2} | {:.4} | {latency} |\n",
            r.model,
            r.method,
            p.activation_pairs,
            p.convs.0,
            p.convs.1,
            p.adds.0,
            p.adds.1,
            r.kept_fp,
            r.layers,
            100.0 * r.int8_mac_share,
            r.psnr_db,
            r.ssim
        ));
    }
    out
}
