//! Activation statistics: the FP32 model, with every activation made a graph output, runs over
//! the calibration images twice: once for the largest |x| of each tensor, once to fill its
//! histogram over [0, that maximum].
use std::borrow::Cow;
use std::collections::BTreeMap;

use cyclegan_onnx::pb::{ModelProto, TypeProto, ValueInfoProto, tensor_proto::DataType, type_proto};
use cyclegan_runtime::cpu::{CpuBackend, CpuOptions};
use cyclegan_runtime::model::Model;
use indicatif::ProgressBar;

use crate::images::Sample;
use crate::scales::Histogram;
use crate::{Error, Result};

/// `model` with each of `names` (that is not already one) added as a float32 output.
pub fn instrument(model: &ModelProto, names: &[String]) -> ModelProto {
    let mut out = model.clone();
    let graph = out.graph.as_mut().expect("checked by the plan");
    for name in names {
        if graph.output.iter().any(|o| &o.name == name) || graph.input.iter().any(|i| &i.name == name) {
            continue;
        }
        let tensor = type_proto::Tensor { elem_type: DataType::Float as i32, shape: None };
        graph.output.push(ValueInfoProto {
            name: name.clone(),
            r#type: Some(TypeProto { value: Some(type_proto::Value::TensorType(tensor)), ..Default::default() }),
            ..Default::default()
        });
    }
    out
}

/// Opens a (possibly instrumented or quantized) model on the CPU backend.
pub fn open(model: &ModelProto, origin: &str, threads: usize) -> Result<CpuBackend> {
    use prost::Message;
    let bytes = model.encode_to_vec();
    let model = Model::from_bytes(Cow::Owned(bytes), origin)?;
    Ok(CpuBackend::open(&model, &CpuOptions { threads, ..Default::default() })?)
}

/// Histograms of `names` (activations of `model`, the graph input included) over `samples`.
pub fn histograms(
    model: &ModelProto,
    names: &[String],
    samples: &[Sample],
    threads: usize,
    progress: &ProgressBar,
) -> Result<BTreeMap<String, Histogram>> {
    let input_name = model.graph.as_ref().and_then(|g| g.input.first()).map(|i| i.name.clone()).unwrap_or_default();
    let mut session = open(&instrument(model, names), "calibration model", threads)?;
    let mut run = |sample: &Sample, visit: &mut dyn FnMut(&str, &[f32])| -> Result<()> {
        visit(&input_name, &sample.tensor);
        for (name, values) in session.run_all(&sample.tensor, sample.shape)? {
            visit(&name, &values);
        }
        Ok(())
    };
    progress.set_length(2 * samples.len() as u64);
    let mut amax: BTreeMap<String, f32> = names.iter().map(|n| (n.clone(), 0.0)).collect();
    for s in samples {
        run(s, &mut |name, values| {
            if let Some(m) = amax.get_mut(name) {
                *m = values.iter().fold(*m, |a, v| a.max(v.abs()));
            }
        })?;
        progress.inc(1);
    }
    let mut hist: BTreeMap<String, Histogram> = amax.iter().map(|(n, a)| (n.clone(), Histogram::new(*a))).collect();
    for s in samples {
        run(s, &mut |name, values| {
            if let Some(h) = hist.get_mut(name) {
                h.add(values);
            }
        })?;
        progress.inc(1);
    }
    if let Some((name, _)) = amax.iter().find(|(_, a)| !a.is_finite()) {
        return Err(Error::Model(format!("activation `{name}` is not finite on the calibration images")));
    }
    Ok(hist)
}
