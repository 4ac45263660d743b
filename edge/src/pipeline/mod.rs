//! The pipelines `cyclegan-edge run` builds (`assemble`):
//! input -> queue (leaky for live inputs) -> videoconvert -> cyclegan -> output,
//! the loop that watches them (`watch`): statistics, frame limit, Ctrl-C (EOS), timeouts, and
//! the streams of a run, one such pipeline each (`streams`).
mod assemble;
mod elements;
mod inspect;
mod jetson;
mod mosaic;
mod sink;
mod source;
mod streams;
mod watch;

use std::sync::Once;
use std::sync::atomic::AtomicBool;

use gstreamer as gst;
use gstreamer::prelude::*;

pub use inspect::{VideoSummary, decode_file};
pub use jetson::available as element_available;
pub use sink::Output;
pub use source::Input;
pub use streams::{StreamOutcome, Streams, run_streams, segment_output};

use crate::config::EdgeConfig;
use crate::{Error, Result};

/// One live statistics line.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveStats {
    /// Frames translated so far.
    pub frames: u64,
    pub fps: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    /// Frames dropped: by the leaky queue while the model was busy (oldest first), or skipped
    /// as too late by the element or a real-time sink (QoS).
    pub dropped: u64,
    pub inference_size: (u32, u32),
    pub backend: String,
    /// The last frame's time on the GPU (TensorRT backend, by CUDA events).
    pub device_ms: Option<f64>,
    /// Bytes the last frame was copied through (TensorRT backend).
    pub copied_bytes: Option<u64>,
    /// Mean frames per inference, where the model is shared with other streams.
    pub batch_mean: Option<f64>,
    /// Streams sharing the model, where it is shared.
    pub shared_by: Option<u32>,
}

/// What a run tells its caller while it goes.
#[derive(Debug)]
pub enum Event<'a> {
    /// A choice made for the user, once, before frames flow (a software fallback).
    Note(&'a str),
    /// About once a second.
    Stats(&'a LiveStats),
}

#[derive(Debug, Clone)]
pub struct RunReport {
    pub frames: u64,
    pub dropped: u64,
    pub seconds: f64,
    /// Ended by Ctrl-C (after a clean EOS).
    pub interrupted: bool,
    /// Ended because the live input went away (stopped delivering, or failed) mid-run: why. The
    /// output is finished with the frames that came before.
    pub lost: Option<String>,
    pub last: Option<LiveStats>,
    pub model: String,
    /// Percentiles of every frame's time through the element over the whole run.
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    /// Mean frames per inference over the run, where the model is shared.
    pub batch_mean: Option<f64>,
}

/// Registers the element with GStreamer once per process.
pub fn init() -> Result<()> {
    static REGISTER: Once = Once::new();
    gst::init().map_err(|e| Error::Pipeline(format!("GStreamer: {e}")))?;
    let mut result = Ok(());
    REGISTER.call_once(|| result = crate::gst::register(None));
    result.map_err(|e| Error::Pipeline(format!("registering `cyclegan`: {e}")))
}

/// Runs the pipeline `config` describes until the input ends, `num_frames` are done, or
/// `interrupt` is set (then EOS is sent, so files are finished properly).
pub fn run(config: &EdgeConfig, interrupt: &AtomicBool, on_event: impl FnMut(Event<'_>)) -> Result<RunReport> {
    run_tapped(config, interrupt, None, on_event)
}

/// [`run`], the translated frames also going to a tile of the mosaic.
fn run_tapped(
    config: &EdgeConfig,
    interrupt: &AtomicBool,
    tap: Option<&mosaic::Tap>,
    mut on_event: impl FnMut(Event<'_>),
) -> Result<RunReport> {
    config.validate()?;
    let input = Input::parse(&config.input.input)?;
    let output = Output::parse(&config.output.output)?;
    // Loaded once, here, so a bad one is reported before anything starts; the element takes it.
    let model = crate::pretrained::load(config.inference.model.as_deref())?;
    let described = model.describe();
    init()?;
    let live = input.is_live(&config.input);
    let pipeline = gst::Pipeline::new();
    let result = assemble::assemble(&pipeline, config, model, &input, &output, tap, &mut on_event).and_then(|parts| {
        watch::watch(&pipeline, config, &input, live, (&parts.0, &parts.1), interrupt, &mut on_event)
    });
    let _ = pipeline.set_state(gst::State::Null);
    match result {
        Ok(mut report) => {
            output.finish()?;
            report.model = described;
            Ok(report)
        }
        Err(e) => {
            output.discard();
            Err(e)
        }
    }
}
