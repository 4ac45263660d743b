//! Building the pipeline `cyclegan-edge run` runs, and the probes that count its frames.
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use gstreamer as gst;
use gstreamer::prelude::*;

use super::elements::{link_error, make_element};
use super::mosaic::Tap;
use super::{Event, Input, Output};
use crate::config::{EdgeConfig, InferenceConfig};
use crate::model::Model;
use crate::stats::Histogram;
use crate::{Error, Result};

/// The `cyclegan` element with `[inference]` applied by property name, as gst-launch-1.0 applies
/// `key=value`: each key sets the property of the same name with dashes (keys left unset, like an
/// empty `model`, are not in the table and keep the element's default).
pub(crate) fn cyclegan_element(inference: &InferenceConfig) -> Result<gst::Element> {
    let element = make_element("cyclegan")?;
    let table = toml::Table::try_from(inference).expect("[inference] serialises");
    for (key, value) in table {
        let property = key.replace('_', "-");
        if element.find_property(&property).is_none() {
            return Err(Error::Invalid(format!("[inference] {key}: the cyclegan element has no property {property}")));
        }
        let text = match value {
            toml::Value::String(s) => s,
            other => other.to_string(),
        };
        element.set_property_from_str(&property, &text);
    }
    Ok(element)
}

/// Counters the pads' probes keep while the pipeline runs.
#[derive(Debug, Default)]
pub(super) struct Counters {
    /// Frames out of the model (at most `num_frames`).
    pub frames: Arc<AtomicU64>,
    /// Frames from the input, ahead of the model: the watchdogs look at these, so a first frame
    /// that takes minutes (a TensorRT engine being built) is not a silent camera.
    pub arrived: Arc<AtomicU64>,
    pub last_arrival: Arc<Mutex<Option<Instant>>>,
    /// Frames the leaky queue of a live input dropped.
    pub dropped: Arc<AtomicU64>,
    pub latencies: Arc<Mutex<Latencies>>,
}

/// Each frame's time through the element (its arrival at the element to its departure), and the
/// frames on their way through, oldest first, by timestamp.
pub(super) type Latencies = (Histogram, VecDeque<(Option<gst::ClockTime>, Instant)>);

/// The input's part of an assembled pipeline: what its errors come from, and where its frames
/// enter the rest (so the rest can be finished when the input goes away).
#[derive(Debug)]
pub(super) struct InputPart {
    /// The elements the input added (their children are theirs too).
    pub elements: Vec<gst::Element>,
    /// The queue's sink pad, fed by the input.
    pub entry: gst::Pad,
}

impl InputPart {
    /// Whether `object` (a bus message's source) is one of the input's elements or inside one.
    pub fn owns(&self, object: &gst::Object) -> bool {
        self.elements.iter().any(|e| object == e.upcast_ref::<gst::Object>() || object.has_as_ancestor(e))
    }

    /// Cuts the input off and ends the stream where it entered, so what is queued is still
    /// translated and the output is finished, whatever state the input is in.
    pub fn cut_off(&self) {
        if let Some(peer) = self.entry.peer() {
            let _ = peer.unlink(&self.entry);
        }
        self.entry.send_event(gst::event::Eos::new());
    }
}

/// Builds input -> queue -> videoconvert -> cyclegan -> output in `pipeline` (with a branch to
/// the mosaic's `tap`, where there is one), with the probes that count frames and stop at
/// `num_frames`; the output's notes go to `on_event`.
pub(super) fn assemble(
    pipeline: &gst::Pipeline,
    config: &EdgeConfig,
    model: Model,
    input: &Input,
    output: &Output,
    tap: Option<&Tap>,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<(Counters, InputPart)> {
    let live = input.is_live(&config.input);
    let counters = Counters::default();
    let queue = make_element("queue")?;
    if live {
        queue.set_property("max-size-buffers", config.input.queue_frames);
        queue.set_property("max-size-bytes", 0u32);
        queue.set_property("max-size-time", 0u64);
        queue.set_property_from_str("leaky", "downstream");
        let dropped = counters.dropped.clone();
        queue.connect("overrun", false, move |_| {
            dropped.fetch_add(1, Ordering::Relaxed);
            None
        });
    }
    let convert = make_element("videoconvert")?;
    let cyclegan = cyclegan_element(&config.inference)?;
    // Loaded and checked once, by `run`: the element takes it as it is.
    cyclegan.downcast_ref::<crate::gst::CycleGan>().expect("a cyclegan element").set_loaded_model(model);
    pipeline.add_many([&queue, &convert, &cyclegan]).map_err(link_error)?;
    gst::Element::link_many([&queue, &convert, &cyclegan]).map_err(link_error)?;
    let mut notes = Vec::new();
    let sink = output.build(pipeline, &config.output, live, &mut notes)?;
    let translated = match tap {
        Some(tap) => tap.branch(pipeline, &cyclegan)?,
        None => cyclegan.clone(),
    };
    translated.link(&sink).map_err(link_error)?;
    for note in &notes {
        on_event(Event::Note(note));
    }

    let limit = config.input.num_frames;
    {
        let (arrived, last_arrival) = (counters.arrived.clone(), counters.last_arrival.clone());
        queue.static_pad("sink").expect("queue has sink").add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            *last_arrival.lock().unwrap() = Some(Instant::now());
            arrived.fetch_add(1, Ordering::SeqCst);
            gst::PadProbeReturn::Ok
        });
    }
    {
        let latencies = counters.latencies.clone();
        cyclegan.static_pad("sink").expect("cyclegan has sink").add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(buffer) = info.buffer() {
                latencies.lock().unwrap().1.push_back((buffer.pts(), Instant::now()));
            }
            gst::PadProbeReturn::Ok
        });
    }
    {
        let (frames, latencies) = (counters.frames.clone(), counters.latencies.clone());
        cyclegan.static_pad("src").expect("cyclegan has src").add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if limit > 0 && frames.load(Ordering::SeqCst) >= limit {
                return gst::PadProbeReturn::Drop;
            }
            frames.fetch_add(1, Ordering::SeqCst);
            let pts = info.buffer().and_then(|b| b.pts());
            let (histogram, entered) = &mut *latencies.lock().unwrap();
            // Frames that entered before this one and never left were dropped on the way.
            while let Some((entered_pts, at)) = entered.pop_front() {
                if entered_pts == pts {
                    histogram.record(at.elapsed());
                    break;
                }
            }
            gst::PadProbeReturn::Ok
        });
    }
    if limit > 0 {
        // Frames already queued when the limit is reached are not worth translating: with a slow
        // model (a small CPU, emulation) they would hold the end of the run for seconds each.
        // `Handled` (the probe takes the buffer): with `Drop` on this pad GStreamer 1.22 logs a
        // GStreamer-CRITICAL (an unref of a null buffer) for each frame dropped.
        let entered = AtomicU64::new(0);
        cyclegan.static_pad("sink").expect("cyclegan has sink").add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            if entered.fetch_add(1, Ordering::SeqCst) >= limit {
                return gst::PadProbeReturn::Handled;
            }
            gst::PadProbeReturn::Ok
        });
    }
    let entry = queue.static_pad("sink").expect("queue has sink");
    let before = pipeline.children();
    let queue_sink = entry.clone();
    input.build(pipeline, &config.input, move |pad| {
        pad.link(&queue_sink).map(|_| ()).map_err(|e| Error::Pipeline(format!("cannot link the decoded video: {e:?}")))
    })?;
    let elements = pipeline.children().into_iter().filter(|e| !before.contains(e)).collect();
    Ok((counters, InputPart { elements, entry }))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::backend::BackendKind;
    use crate::backend::tensorrt::PrecisionChoice;

    #[test]
    fn every_inference_key_reaches_the_element_property_of_its_name() {
        crate::pipeline::init().unwrap();
        let inference = InferenceConfig {
            model: Some(PathBuf::from("g.onnx")),
            backend: BackendKind::Cpu,
            inference_size: "64x48".into(),
            strength: 0.5,
            temporal_smoothing: 0.25,
            threads: 3,
            precision: PrecisionChoice::Auto,
            engine: Some(PathBuf::from("g.engine")),
            engine_cache: Some(PathBuf::from("engines")),
            frames_in_flight: 2,
            share_model: false,
            batch_window_ms: 12.5,
            max_batch: 6,
            concurrent_batches: 2,
        };
        let element = cyclegan_element(&inference).unwrap();
        let text = |name: &str| element.property_value(name).serialize().unwrap().to_string();
        for (name, value) in [
            ("model", "g.onnx"),
            ("backend", "cpu"),
            ("inference-size", "64x48"),
            ("precision", "auto"),
            ("engine", "g.engine"),
            ("engine-cache", "engines"),
        ] {
            assert_eq!(text(name), value, "{name}");
        }
        assert_eq!(element.property::<f64>("strength"), 0.5);
        assert_eq!(element.property::<f64>("temporal-smoothing"), 0.25);
        assert_eq!(element.property::<u32>("threads"), 3);
        assert_eq!(element.property::<u32>("frames-in-flight"), 2);
        assert!(!element.property::<bool>("share-model"));
        assert_eq!(element.property::<f64>("batch-window-ms"), 12.5);
        assert_eq!(element.property::<u32>("max-batch"), 6);
        assert_eq!(element.property::<u32>("concurrent-batches"), 2);
    }
}
