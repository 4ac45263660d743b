//! `cyclegan-edge bench`: our CPU backend against ONNX Runtime from Python on the same model and
//! thread count, the whole pipeline's frame rate against the backend's alone, and with an INT8
//! model the FP16 graph and the INT8 model against FP32 on this backend.
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::backend::{Backend, CpuBackend, CpuOptions};
use crate::model::Model;
use crate::stats::percentile;
use crate::{Error, Result};

pub struct BenchOptions {
    pub model: Option<PathBuf>,
    /// Inference (and frame) size.
    pub size: (usize, usize),
    pub threads: usize,
    pub iters: usize,
    pub warmup: usize,
    /// Frames through the pipeline.
    pub frames: u32,
    /// Interleaved measurement rounds (medians are reported).
    pub rounds: usize,
    /// Python with onnxruntime (the project's .venv by default).
    pub python: PathBuf,
    /// A Q/DQ model of `model`'s generator: FP32, FP16 and INT8 are then timed side by side.
    pub int8: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Row {
    pub measure: String,
    pub ours: f64,
    pub peer_name: String,
    pub peer: f64,
    /// Ours relative to the peer, higher is better.
    pub ratio: f64,
    /// What the ratio should reach, where there is a target.
    pub target: Option<f64>,
}

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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    percentile(&v, 0.5)
}

/// Milliseconds per frame of the backend alone (median).
fn backend_ms(backend: &mut dyn Backend, size: (usize, usize), iters: usize, warmup: usize) -> Result<f64> {
    let shape = [1, 3, size.1, size.0];
    let input: Vec<f32> = (0..3 * size.0 * size.1).map(|i| ((i * 7919) % 2000) as f32 / 1000.0 - 1.0).collect();
    let mut output = Vec::new();
    for _ in 0..warmup {
        backend.run(&input, shape, &mut output)?;
    }
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        backend.run(&input, shape, &mut output)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(median(times))
}

fn python_ms(opts: &BenchOptions, model_path: &Path) -> Result<(f64, String)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/ort_peer.py");
    let out = Command::new(&opts.python)
        .arg(&script)
        .arg("bench")
        .arg(model_path)
        .args([opts.size.0, opts.size.1, opts.threads, opts.iters, opts.warmup].map(|v| v.to_string()))
        .output()
        .map_err(|e| Error::Invalid(format!("--python {}: {e} (run ./scripts/install.sh)", opts.python.display())))?;
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
fn pipeline_fps(opts: &BenchOptions) -> Result<f64> {
    crate::pipeline::init()?;
    let (w, h) = opts.size;
    let model = opts.model.as_ref().map(|m| format!(" model=\"{}\"", m.display())).unwrap_or_default();
    let description = format!(
        "videotestsrc num-buffers={} pattern=ball ! video/x-raw,format=I420,width={w},height={h},framerate=30/1 \
         ! queue ! cyclegan name=net backend=cpu inference-size={w}x{h} threads={}{model} ! fakesink name=sink sync=false",
        opts.frames + opts.warmup as u32,
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

pub fn run(opts: &BenchOptions) -> Result<Vec<Row>> {
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
    // Shared machines drift by tens of percent over a minute: measure in interleaved rounds
    // and take the median of each round's figures and ratios.
    let cpu = CpuOptions { threads: opts.threads, ..Default::default() };
    let mut backend = CpuBackend::open(&model, &cpu)?;
    let mut variants: Vec<(String, CpuBackend, Vec<f64>)> = match &opts.int8 {
        Some(path) => precision_variants(&model, path)?
            .into_iter()
            .zip(["FP16 graph", "INT8 (Q/DQ)"])
            .map(|(m, name)| Ok((name.to_string(), CpuBackend::open(&m, &cpu)?, Vec::new())))
            .collect::<Result<_>>()?,
        None => Vec::new(),
    };
    let (mut ours, mut peer, mut fps, mut version) = (Vec::new(), Vec::new(), Vec::new(), String::new());
    let mut result = Ok(());
    for _ in 0..opts.rounds.max(1) {
        let round = (|| -> Result<()> {
            let (ms, v) = python_ms(opts, &model_path)?;
            peer.push(ms);
            version = v;
            // The backend alone right before and right after the pipeline, so that both see the
            // same machine.
            let before = backend_ms(&mut backend, opts.size, opts.iters, opts.warmup)?;
            fps.push(pipeline_fps(opts)?);
            let after = backend_ms(&mut backend, opts.size, opts.iters, opts.warmup)?;
            ours.push((before + after) / 2.0);
            for (_, variant, times) in &mut variants {
                times.push(backend_ms(variant, opts.size, opts.iters, opts.warmup)?);
            }
            Ok(())
        })();
        if round.is_err() {
            result = round;
            break;
        }
    }
    if opts.model.is_none() {
        let _ = std::fs::remove_file(&model_path);
    }
    result?;
    let speed_ratio = median(peer.iter().zip(&ours).map(|(p, o)| p / o).collect());
    let (w, h) = opts.size;
    let precision_rows: Vec<Row> = variants
        .into_iter()
        .map(|(name, _, times)| Row {
            measure: format!("{name} ms/frame {w}x{h}, {} threads", opts.threads),
            ratio: median(ours.iter().zip(&times).map(|(o, t)| o / t).collect()),
            ours: median(times),
            peer_name: "FP32 graph, this backend".into(),
            peer: median(ours.clone()),
            target: None,
        })
        .collect();
    let pipeline_ratio = median(fps.iter().zip(&ours).map(|(f, o)| f * o / 1000.0).collect());
    let (ours, peer, fps) = (median(ours), median(peer), median(fps));
    let mut rows = vec![
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
    ];
    rows.extend(precision_rows);
    Ok(rows)
}

/// The table `cyclegan-edge bench` prints (Markdown).
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from("| measure | ours | peer | peer value | ratio (ours/peer speed) | target |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for r in rows {
        let target = match r.target {
            Some(t) => format!(">= {t:.2} {}", if r.ratio >= t { "(met)" } else { "(missed)" }),
            None => "-".into(),
        };
        out.push_str(&format!(
            "| {} | {:.2} | {} | {:.2} | {:.2} | {target} |\n",
            r.measure, r.ours, r.peer_name, r.peer, r.ratio
        ));
    }
    out
}
