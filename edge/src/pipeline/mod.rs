//! The pipelines `cyclegan-edge run` builds:
//! input -> queue (leaky for live inputs) -> videoconvert -> cyclegan -> output,
//! and the loop that watches them: statistics, frame limit, Ctrl-C (EOS), timeouts.
mod inspect;
mod jetson;
mod sink;
mod source;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;

pub use inspect::{VideoSummary, decode_file};
pub use jetson::available as element_available;
pub use sink::Output;
pub use source::Input;

use crate::config::EdgeConfig;
use crate::model::Model;
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
    pub last: Option<LiveStats>,
    pub model: String,
}

/// Registers the element with GStreamer once per process.
pub fn init() -> Result<()> {
    static REGISTER: Once = Once::new();
    gst::init().map_err(|e| Error::Pipeline(format!("GStreamer: {e}")))?;
    let mut result = Ok(());
    REGISTER.call_once(|| result = crate::gst::register(None));
    result.map_err(|e| Error::Pipeline(format!("registering `cyclegan`: {e}")))
}

/// How long the muxer may take to finish a file after EOS.
const FINISH_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs the pipeline `config` describes until the input ends, `num_frames` are done, or
/// `interrupt` is set (then EOS is sent, so files are finished properly).
pub fn run(config: &EdgeConfig, interrupt: &AtomicBool, mut on_event: impl FnMut(Event<'_>)) -> Result<RunReport> {
    config.validate()?;
    let input = Input::parse(&config.input.input)?;
    let output = Output::parse(&config.output.output)?;
    // Open the model here too, so a bad one is reported before anything starts.
    let model = Model::load(config.inference.model.as_deref())?;
    init()?;
    let live = input.is_live(&config.input);
    let pipeline = gst::Pipeline::new();
    let result = build_and_watch(&pipeline, config, &input, &output, live, interrupt, &mut on_event);
    let _ = pipeline.set_state(gst::State::Null);
    match result {
        Ok(mut report) => {
            output.finish()?;
            report.model = model.describe();
            Ok(report)
        }
        Err(e) => {
            output.discard();
            Err(e)
        }
    }
}

fn build_and_watch(
    pipeline: &gst::Pipeline,
    config: &EdgeConfig,
    input: &Input,
    output: &Output,
    live: bool,
    interrupt: &AtomicBool,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<RunReport> {
    let queue = source::make_element("queue")?;
    let dropped = Arc::new(AtomicU64::new(0));
    if live {
        queue.set_property("max-size-buffers", config.input.queue_frames);
        queue.set_property("max-size-bytes", 0u32);
        queue.set_property("max-size-time", 0u64);
        queue.set_property_from_str("leaky", "downstream");
        let dropped = dropped.clone();
        queue.connect("overrun", false, move |_| {
            dropped.fetch_add(1, Ordering::Relaxed);
            None
        });
    }
    let convert = source::make_element("videoconvert")?;
    let inference = &config.inference;
    let mut builder = gst::ElementFactory::make("cyclegan")
        .property("backend", crate::gst::BackendProperty::from(inference.backend))
        .property("inference-size", inference.inference_size.as_str())
        .property("strength", inference.strength)
        .property("threads", inference.threads as u32)
        .property("precision", inference.precision.name())
        .property("frames-in-flight", inference.frames_in_flight);
    if let Some(model) = &inference.model {
        builder = builder.property("model", model.to_string_lossy().into_owned());
    }
    if let Some(engine) = &inference.engine {
        builder = builder.property("engine", engine.to_string_lossy().into_owned());
    }
    if let Some(dir) = &inference.engine_cache {
        builder = builder.property("engine-cache", dir.to_string_lossy().into_owned());
    }
    let cyclegan = builder.build().map_err(source::link_error)?;
    pipeline.add_many([&queue, &convert, &cyclegan]).map_err(source::link_error)?;
    gst::Element::link_many([&queue, &convert, &cyclegan]).map_err(source::link_error)?;
    let mut notes = Vec::new();
    let sink = output.build(pipeline, &config.output, live, &mut notes)?;
    cyclegan.link(&sink).map_err(source::link_error)?;
    for note in &notes {
        on_event(Event::Note(note));
    }

    let frames = Arc::new(AtomicU64::new(0));
    let last_frame = Arc::new(std::sync::Mutex::new(Instant::now()));
    let limit = config.input.num_frames;
    // The watchdogs look at frames arriving from the input, ahead of the model: a first frame
    // that takes minutes (a TensorRT engine being built) is not a silent camera.
    let arrived = Arc::new(AtomicU64::new(0));
    {
        let (arrived, last_frame) = (arrived.clone(), last_frame.clone());
        queue.static_pad("sink").expect("queue has sink").add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            *last_frame.lock().unwrap() = Instant::now();
            arrived.fetch_add(1, Ordering::SeqCst);
            gst::PadProbeReturn::Ok
        });
    }
    {
        let frames = frames.clone();
        cyclegan.static_pad("src").expect("cyclegan has src").add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            if limit > 0 && frames.load(Ordering::SeqCst) >= limit {
                return gst::PadProbeReturn::Drop;
            }
            frames.fetch_add(1, Ordering::SeqCst);
            gst::PadProbeReturn::Ok
        });
    }
    if limit > 0 {
        // Frames already queued when the limit is reached are not worth translating: with a slow
        // model (a small CPU, emulation) they would hold the end of the run for seconds each.
        let entered = AtomicU64::new(0);
        cyclegan.static_pad("sink").expect("cyclegan has sink").add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            if entered.fetch_add(1, Ordering::SeqCst) >= limit {
                return gst::PadProbeReturn::Drop;
            }
            gst::PadProbeReturn::Ok
        });
    }
    let queue_sink = queue.static_pad("sink").expect("queue has sink");
    input.build(pipeline, &config.input, move |pad| {
        pad.link(&queue_sink).map(|_| ()).map_err(|e| Error::Pipeline(format!("cannot link the decoded video: {e:?}")))
    })?;

    let bus = pipeline.bus().expect("a pipeline has a bus");
    if pipeline.set_state(gst::State::Playing).is_err() {
        return Err(first_error(&bus, &config.input.input)
            .unwrap_or_else(|| Error::Pipeline("the pipeline would not start".into())));
    }
    let timeout = Duration::from_secs(config.input.timeout_s);
    let started = Instant::now();
    let mut eos_sent: Option<Instant> = None;
    let mut interrupted = false;
    let mut last: Option<LiveStats> = None;
    // Frames elements skipped for being late (QoS), per element: sinks that render in real time
    // and the element itself, which then skips the work.
    let mut late = std::collections::HashMap::<String, u64>::new();
    let total_dropped =
        |late: &std::collections::HashMap<String, u64>| dropped.load(Ordering::Relaxed) + late.values().sum::<u64>();
    loop {
        if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) {
            use gst::MessageView;
            match msg.view() {
                MessageView::Eos(_) => break,
                MessageView::Error(err) => return Err(bus_error(err, &config.input.input)),
                // An element's latency changed (cyclegan holding frames in flight): as gst-launch does.
                MessageView::Latency(_) => {
                    let _ = pipeline.recalculate_latency();
                }
                MessageView::Qos(q) => {
                    if let (Some(src), Some(n)) = (q.src(), u64::try_from(q.dropped().value()).ok()) {
                        late.insert(src.path_string().to_string(), n);
                    }
                }
                MessageView::Element(m) if m.structure().is_some_and(|s| s.name() == crate::gst::NOTE_MESSAGE) => {
                    if let Some(text) = m.structure().and_then(|s| s.get::<String>("text").ok()) {
                        on_event(Event::Note(&text));
                    }
                }
                MessageView::Element(m) => {
                    if let Some(s) = m.structure().filter(|s| s.name() == crate::gst::STATS_MESSAGE) {
                        let stats = LiveStats {
                            frames: frames.load(Ordering::SeqCst),
                            fps: s.get("fps").unwrap_or(0.0),
                            p50_ms: s.get("latency-p50-ms").unwrap_or(0.0),
                            p95_ms: s.get("latency-p95-ms").unwrap_or(0.0),
                            dropped: total_dropped(&late),
                            inference_size: (
                                s.get("inference-width").unwrap_or(0),
                                s.get("inference-height").unwrap_or(0),
                            ),
                            backend: s.get("backend").unwrap_or_default(),
                            device_ms: s.get("device-ms").ok(),
                        };
                        on_event(Event::Stats(&stats));
                        last = Some(stats);
                    }
                }
                _ => {}
            }
        }
        let done = frames.load(Ordering::SeqCst);
        match eos_sent {
            None => {
                let stop = interrupt.load(Ordering::SeqCst);
                if stop || (limit > 0 && done >= limit) {
                    interrupted = stop;
                    pipeline.send_event(gst::event::Eos::new());
                    eos_sent = Some(Instant::now());
                } else if arrived.load(Ordering::SeqCst) == 0 && started.elapsed() > timeout {
                    return Err(Error::Pipeline(format!(
                        "--input {}: no frame within {} s ({} --timeout-s waits longer)",
                        config.input.input,
                        config.input.timeout_s,
                        input.no_frame_hint()
                    )));
                } else if live && arrived.load(Ordering::SeqCst) > 0 && last_frame.lock().unwrap().elapsed() > timeout {
                    return Err(Error::Pipeline(format!(
                        "--input {}: no frame for {} s; the camera or stream went away",
                        config.input.input, config.input.timeout_s
                    )));
                }
            }
            Some(at) if at.elapsed() > FINISH_TIMEOUT => {
                return Err(Error::Pipeline(format!(
                    "the pipeline did not finish within {} s of the end of input",
                    FINISH_TIMEOUT.as_secs()
                )));
            }
            Some(_) => {}
        }
    }
    Ok(RunReport {
        frames: frames.load(Ordering::SeqCst),
        dropped: total_dropped(&late),
        seconds: started.elapsed().as_secs_f64(),
        interrupted,
        last,
        model: String::new(),
    })
}

/// The bus's error as one line naming the element, the cause, and the input it came from.
fn bus_error(err: &gst::message::Error, input: &str) -> Error {
    let source = err.src().map(|s| s.name().to_string()).unwrap_or_else(|| "pipeline".into());
    let factory = err
        .src()
        .and_then(|s| s.downcast_ref::<gst::Element>())
        .and_then(|e| e.factory())
        .map(|f| f.name().to_string())
        .unwrap_or_default();
    let debug = err.debug().map(|d| d.to_string()).unwrap_or_default();
    // GStreamer's debug strings start with a source location; the last line says most.
    let detail = debug.lines().last().unwrap_or_default().trim().to_string();
    let detail = if detail.is_empty() || err.error().to_string().contains(&detail) {
        String::new()
    } else {
        format!(" ({detail})")
    };
    let hint =
        jetson::hint(&factory, &format!("{} {debug}", err.error())).map(|h| format!(": {h}")).unwrap_or_default();
    Error::Pipeline(format!("{source}: {}{detail}{hint} [--input {input}]", err.error()))
}

fn first_error(bus: &gst::Bus, input: &str) -> Option<Error> {
    while let Some(msg) = bus.timed_pop_filtered(gst::ClockTime::from_mseconds(500), &[gst::MessageType::Error]) {
        if let gst::MessageView::Error(err) = msg.view() {
            return Some(bus_error(err, input));
        }
    }
    None
}
