//! `bench int8`: the FP16 graph of an FP32 export and its INT8 (Q/DQ) model against the FP32
//! graph, on the CPU backend.
use std::borrow::Cow;
use std::path::Path;

use super::{BenchOptions, Row, backend_ms, median, rounds};
use crate::backend::{CpuBackend, CpuOptions};
use crate::model::Model;
use crate::{Error, Result};

/// The FP16 graph of `model` and the INT8 model at `int8`, checked to be one.
fn precision_variants(model: &Model, int8: &Path) -> Result<[Model; 2]> {
    let bad = |source| cyclegan_runtime::Error::Model { path: model.origin.clone(), source: Box::new(source) };
    let fp32 = cyclegan_onnx::io::decode_model(&model.bytes).map_err(bad)?;
    let fp16 = cyclegan_onnx::convert::to_fp16(&fp32).map_err(bad)?;
    let fp16 = Model::from_bytes(Cow::Owned(cyclegan_onnx::io::encode_model(&fp16)), "FP16 graph")?;
    let int8_model = Model::load(Some(int8))?;
    if int8_model.metadata.precision != cyclegan_onnx::Precision::Int8
        || model.metadata.precision != cyclegan_onnx::Precision::Fp32
    {
        return Err(Error::Invalid(format!(
            "--int8 {}: a {} model beside a {} --model; give the FP32 export as --model and its Q/DQ model \
             (cyclegan-calib, or cyclegan-train export --precision int8) as --int8",
            int8.display(),
            int8_model.metadata.precision,
            model.metadata.precision
        )));
    }
    Ok([fp16, int8_model])
}

/// The FP16 graph of `opts.model` and the Q/DQ model `int8` of its generator against the FP32
/// graph, all on this backend.
pub fn int8(opts: &BenchOptions, int8: &Path) -> Result<Vec<Row>> {
    let model = Model::load(opts.model.as_deref())?;
    let cpu = CpuOptions { threads: opts.threads, ..Default::default() };
    let mut fp32 = CpuBackend::open(&model, &cpu)?;
    let mut variants: Vec<(&str, CpuBackend, Vec<f64>)> = precision_variants(&model, int8)?
        .into_iter()
        .zip(["FP16 graph", "INT8 (Q/DQ)"])
        .map(|(m, name)| Ok((name, CpuBackend::open(&m, &cpu)?, Vec::new())))
        .collect::<Result<_>>()?;
    let mut reference = Vec::new();
    rounds(opts, || {
        reference.push(backend_ms(&mut fp32, opts.size, opts.iters, opts.warmup)?);
        for (_, variant, times) in &mut variants {
            times.push(backend_ms(variant, opts.size, opts.iters, opts.warmup)?);
        }
        Ok(())
    })?;
    let (w, h) = opts.size;
    Ok(variants
        .into_iter()
        .map(|(name, _, times)| Row {
            measure: format!("{name} ms/frame {w}x{h}, {} threads", opts.threads),
            ratio: median(reference.iter().zip(&times).map(|(r, t)| r / t).collect()),
            ours: median(times),
            peer_name: "FP32 graph, this backend".into(),
            peer: median(reference.clone()),
            target: None,
        })
        .collect())
}
