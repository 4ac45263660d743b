//! Reading a written video back: proof that a file is complete and playable.
use gstreamer as gst;
use gstreamer::prelude::*;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::{Error, Result};

/// What decoding a file found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoSummary {
    pub frames: u64,
    pub width: u32,
    pub height: u32,
}

/// Decodes the first video stream of `path` to the end (decodebin), counting frames.
pub fn decode_file(path: &Path) -> Result<VideoSummary> {
    super::init()?;
    let bad = |m: String| Error::Pipeline(format!("{}: {m}", path.display()));
    let src = super::elements::make_element("filesrc")?;
    src.set_property("location", path.to_string_lossy().as_ref());
    let decode = super::elements::make_element("decodebin")?;
    let sink = super::elements::make_element("fakesink")?;
    sink.set_property("sync", false);
    let pipeline = gst::Pipeline::new();
    pipeline.add_many([&src, &decode, &sink]).map_err(|e| bad(e.to_string()))?;
    src.link(&decode).map_err(|e| bad(e.to_string()))?;
    let seen = Arc::new(Mutex::new(VideoSummary { frames: 0, width: 0, height: 0 }));
    let sink_pad = sink.static_pad("sink").expect("fakesink has sink");
    let counter = seen.clone();
    sink_pad.add_probe(gst::PadProbeType::BUFFER, move |pad, _| {
        let mut s = counter.lock().unwrap();
        if let Some(st) = pad.current_caps().as_ref().and_then(|c| c.structure(0)) {
            s.width = st.get::<i32>("width").unwrap_or(0) as u32;
            s.height = st.get::<i32>("height").unwrap_or(0) as u32;
        }
        s.frames += 1;
        gst::PadProbeReturn::Ok
    });
    decode.connect_pad_added(move |_, pad| {
        let video =
            pad.current_caps().and_then(|c| c.structure(0).map(|s| s.name().starts_with("video/"))).unwrap_or(false);
        if video && !sink_pad.is_linked() {
            let _ = pad.link(&sink_pad);
        }
    });
    pipeline.set_state(gst::State::Playing).map_err(|_| bad("cannot be read".into()))?;
    let msg = pipeline
        .bus()
        .expect("a pipeline has a bus")
        .timed_pop_filtered(gst::ClockTime::from_seconds(120), &[gst::MessageType::Eos, gst::MessageType::Error]);
    let _ = pipeline.set_state(gst::State::Null);
    match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => Ok(*seen.lock().unwrap()),
        Some(gst::MessageView::Error(e)) => Err(bad(format!("does not decode: {}", e.error()))),
        _ => Err(bad("decoding did not finish in 120 s".into())),
    }
}
