//! `bench speed`: our CPU backend against ONNX Runtime from Python on the same model and thread
//! count, and the whole pipeline's frame rate against the backend's alone.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use gstreamer as gst;
use gstreamer::prelude::*;

use super::{BenchOptions, Row, backend_ms, median, rounds};
use crate::backend::{CpuBackend, CpuOptions};
use crate::model::Model;
use crate::{Error, Result};

/// What `speed` adds.
pub struct SpeedOptions {
    /// Frames through the pipeline.
    pub frames: u32,
    /// Python with onnxruntime.
    pub python: PathBuf,
}

fn python_ms(opts: &BenchOptions, python: &Path, model_path: &Path) -> Result<(f64, String)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/ort_peer.py");
    let out = Command::new(python)
        .arg(&script)
        .arg("bench")
        .arg(model_path)
        .args([opts.size.0, opts.size.1, opts.threads, opts.iters, opts.warmup].map(|v| v.to_string()))
        .output()
        .map_err(|e| Error::Invalid(format!("--python {}: {e} (run ./scripts/install.sh)", python.display())))?;
    if !out.status.success() {
        return Err(Error::Invalid(format!(
            "ONNX Runtime in Python failed: {}",
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or_default()
        )));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| Error::Invalid(format!("ort_peer.py printed no result: {e}")))?;
    Ok((v["median_ms"].as_f64().unwrap_or(f64::NAN), v["version"].as_str().unwrap_or("?").to_string()))
}

/// Frames per second of test pattern -> queue -> cyclegan -> fakesink, frame size = inference size.
fn pipeline_fps(opts: &BenchOptions, frames: u32) -> Result<f64> {
    crate::pipeline::init()?;
    let (w, h) = opts.size;
    let model = opts.model.as_ref().map(|m| format!(" model=\"{}\"", m.display())).unwrap_or_default();
    let description = format!(
        "videotestsrc num-buffers={} pattern=ball ! video/x-raw,format=I420,width={w},height={h},framerate=30/1 \
         ! queue ! cyclegan name=net backend=cpu inference-size={w}x{h} threads={}{model} ! fakesink name=sink sync=false",
        frames + opts.warmup as u32,
        opts.threads
    );
    let pipeline = gst::parse::launch(&description)
        .map_err(|e| Error::Pipeline(format!("{e}")))?
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let times = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = pipeline.by_name("sink").expect("named sink");
    let t = times.clone();
    sink.static_pad("sink").expect("sink pad").add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        t.lock().unwrap().push(Instant::now());
        gst::PadProbeReturn::Ok
    });
    pipeline.set_state(gst::State::Playing).map_err(|e| Error::Pipeline(e.to_string()))?;
    let bus = pipeline.bus().expect("bus");
    let result = match bus.timed_pop_filtered(gst::ClockTime::NONE, &[gst::MessageType::Eos, gst::MessageType::Error]) {
        Some(msg) => match msg.view() {
            gst::MessageView::Error(e) => Err(Error::Pipeline(e.error().to_string())),
            _ => Ok(()),
        },
        None => Err(Error::Pipeline("no end of stream".into())),
    };
    let _ = pipeline.set_state(gst::State::Null);
    result?;
    let times = times.lock().unwrap();
    let measured = &times[opts.warmup.min(times.len().saturating_sub(2))..];
    let span = measured.last().unwrap().duration_since(measured[0]).as_secs_f64();
    Ok((measured.len() - 1) as f64 / span)
}

/// Our backend against ONNX Runtime in Python, and the pipeline against the backend alone.
pub fn speed(opts: &BenchOptions, speed: &SpeedOptions) -> Result<Vec<Row>> {
    let model = Model::load(opts.model.as_deref())?;
    let temp;
    let model_path = match &opts.model {
        Some(p) => p.clone(),
        None => {
            temp = std::env::temp_dir().join(format!("cyclegan-edge-bench-{}.onnx", std::process::id()));
            std::fs::write(&temp, &model.bytes).map_err(|e| Error::Invalid(format!("{}: {e}", temp.display())))?;
            temp.clone()
        }
    };
    let cpu = CpuOptions { threads: opts.threads, ..Default::default() };
    let mut backend = CpuBackend::open(&model, &cpu)?;
    let (mut ours, mut peer, mut fps, mut version) = (Vec::new(), Vec::new(), Vec::new(), String::new());
    let result = rounds(opts, || {
        let (ms, v) = python_ms(opts, &speed.python, &model_path)?;
        peer.push(ms);
        version = v;
        // The backend alone right before and right after the pipeline, so that both see the
        // same machine.
        let before = backend_ms(&mut backend, opts.size, opts.iters, opts.warmup)?;
        fps.push(pipeline_fps(opts, speed.frames)?);
        let after = backend_ms(&mut backend, opts.size, opts.iters, opts.warmup)?;
        ours.push((before + after) / 2.0);
        Ok(())
    });
    if opts.model.is_none() {
        let _ = std::fs::remove_file(&model_path);
    }
    result?;
    let speed_ratio = median(peer.iter().zip(&ours).map(|(p, o)| p / o).collect());
    let pipeline_ratio = median(fps.iter().zip(&ours).map(|(f, o)| f * o / 1000.0).collect());
    let (w, h) = opts.size;
    let (ours, peer, fps) = (median(ours), median(peer), median(fps));
    Ok(vec![
        Row {
            measure: format!("backend ms/frame {w}x{h}, {} threads", opts.threads),
            ours,
            peer_name: format!("ONNX Runtime {version} (Python)"),
            peer,
            ratio: speed_ratio,
            target: Some(0.8),
        },
        Row {
            measure: format!("pipeline fps (I420 {w}x{h})"),
            ours: fps,
            peer_name: "backend alone, fps".into(),
            peer: 1000.0 / ours,
            ratio: pipeline_ratio,
            target: Some(0.95),
        },
    ])
}
