//! Following a running pipeline: statistics and notes from the element, the frame limit,
//! Ctrl-C (EOS), timeouts, and the bus's errors as messages that name their cause.
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;

use super::assemble::{Counters, InputPart};
use super::{Event, Input, LiveStats, RunReport, jetson};
use crate::config::EdgeConfig;
use crate::{Error, Result};

/// How long the muxer may take to finish a file after EOS.
const FINISH_TIMEOUT: Duration = Duration::from_secs(20);

/// Plays `pipeline` and follows its bus until the input ends, `num_frames` are done, or
/// `interrupt` is set (then EOS is sent, so files are finished properly); the watchdogs fail
/// a run whose input sends nothing for `timeout_s`, and cut off a live input that stops (or fails)
/// mid-run, finishing the output with the frames it gave.
pub(super) fn watch(
    pipeline: &gst::Pipeline,
    config: &EdgeConfig,
    input: &Input,
    live: bool,
    (counters, source): (&Counters, &InputPart),
    interrupt: &AtomicBool,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<RunReport> {
    let Counters { frames, arrived, last_arrival, dropped, latencies } = counters;
    let limit = config.input.num_frames;
    let bus = pipeline.bus().expect("a pipeline has a bus");
    // An error of a camera or stream that may come back is "not there (yet)", not a failure of
    // ours; an element that cannot start for want of a library or plugin is the machine's setup.
    let classify = |err: &gst::message::Error| {
        let e = bus_error(err, &config.input.input);
        let error = err.error();
        match (input.can_come_back(), err.src()) {
            (true, Some(src)) if source.owns(src) => Error::InputUnavailable(e.to_string()),
            _ if error.matches(gst::LibraryError::Init) || error.matches(gst::CoreError::MissingPlugin) => {
                Error::Setup(e.to_string())
            }
            _ => e,
        }
    };
    if pipeline.set_state(gst::State::Playing).is_err() {
        return Err(match first_error(&bus).as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Error(err)) => classify(err),
            _ => Error::Pipeline("the pipeline would not start".into()),
        });
    }
    let timeout = Duration::from_secs(config.input.timeout_s);
    let started = Instant::now();
    let mut eos_sent: Option<Instant> = None;
    let mut interrupted = false;
    // Why the input was cut off mid-run (it went away); the output is still finished.
    let mut lost: Option<String> = None;
    let mut last: Option<LiveStats> = None;
    // (frames, frames x batch mean) of the statistics with a batch mean.
    let mut batched = (0u64, 0.0f64);
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
                // The input's own complaints once it is cut off (not linked, flushing) say nothing new.
                MessageView::Error(err) if lost.is_some() && err.src().is_some_and(|s| source.owns(s)) => {}
                MessageView::Error(err) => match classify(err) {
                    Error::InputUnavailable(why) if eos_sent.is_none() && arrived.load(Ordering::SeqCst) > 0 => {
                        source.cut_off();
                        eos_sent = Some(Instant::now());
                        lost = Some(why);
                    }
                    e => return Err(e),
                },
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
                MessageView::Element(m) if m.structure().is_some_and(|s| s.name() == crate::gst::STATS_MESSAGE) => {
                    let structure = m.structure().expect("checked above");
                    let element =
                        crate::gst::Stats::try_from(structure).map_err(|e| Error::Pipeline(crate::error::chain(&e)))?;
                    let stats = LiveStats {
                        frames: frames.load(Ordering::SeqCst),
                        fps: element.fps,
                        p50_ms: element.latency_p50_ms,
                        p95_ms: element.latency_p95_ms,
                        dropped: total_dropped(&late),
                        inference_size: (element.inference_width, element.inference_height),
                        backend: element.backend,
                        device_ms: element.device_ms,
                        copied_bytes: element.copied_bytes,
                        batch_mean: element.batch_mean,
                        shared_by: element.shared_by,
                    };
                    if let Some(mean) = element.batch_mean {
                        batched.0 += element.frames;
                        batched.1 += element.frames as f64 * mean;
                    }
                    on_event(Event::Stats(&stats));
                    last = Some(stats);
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
                    let why = format!(
                        "--input {}: no frame within {} s ({} --timeout-s waits longer)",
                        config.input.input,
                        config.input.timeout_s,
                        input.no_frame_hint()
                    );
                    return Err(if input.can_come_back() {
                        Error::InputUnavailable(why)
                    } else {
                        Error::Pipeline(why)
                    });
                } else if live && last_arrival.lock().unwrap().is_some_and(|t| t.elapsed() > timeout) {
                    source.cut_off();
                    eos_sent = Some(Instant::now());
                    lost = Some(format!(
                        "--input {}: no frame for {} s; the camera or stream went away",
                        config.input.input, config.input.timeout_s
                    ));
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
    let histogram = &latencies.lock().unwrap().0;
    Ok(RunReport {
        latency_p50_ms: histogram.percentile_ms(0.5),
        latency_p95_ms: histogram.percentile_ms(0.95),
        batch_mean: (batched.0 > 0).then(|| batched.1 / batched.0 as f64),
        frames: frames.load(Ordering::SeqCst),
        dropped: total_dropped(&late),
        seconds: started.elapsed().as_secs_f64(),
        interrupted,
        lost,
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

/// The first error message the bus holds (waiting a moment for one), after a state change failed.
fn first_error(bus: &gst::Bus) -> Option<gst::Message> {
    bus.timed_pop_filtered(gst::ClockTime::from_mseconds(500), &[gst::MessageType::Error])
}
