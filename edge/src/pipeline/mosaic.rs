//! `[output] mosaic`: the translated streams of a run tiled into one more output (GStreamer's
//! `compositor`). Each stream's pipeline hands its frames over (an `appsink` on a branch after
//! the model: [`Tap`]) to the mosaic's own pipeline, one `appsrc` per tile, so that a stream
//! ending or reconnecting never stops the mosaic; its tile is black meanwhile.
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::Output;
use super::elements::{link_error, make_element};
use crate::config::EdgeConfig;
use crate::{Error, Result};

/// How long the mosaic may take to finish its file after the streams have ended.
const FINISH_TIMEOUT: Duration = Duration::from_secs(20);

pub(super) struct Mosaic {
    pipeline: gst::Pipeline,
    tiles: Vec<gst_app::AppSrc>,
    output: Output,
    /// Where it goes, as given (for messages).
    name: String,
}

/// Where one stream's translated frames go: a tile of the mosaic.
#[derive(Clone)]
pub(super) struct Tap(gst_app::AppSrc);

impl Tap {
    /// Adds `tee ! queue ! appsink` after `after` (the model) in `pipeline`; returns the element
    /// the rest of the pipeline links from.
    pub fn branch(&self, pipeline: &gst::Pipeline, after: &gst::Element) -> Result<gst::Element> {
        let tee = make_element("tee")?;
        let queue = make_element("queue")?;
        // The mosaic never holds a stream back: late tiles drop frames, not the stream.
        queue.set_property("max-size-buffers", 2u32);
        queue.set_property("max-size-bytes", 0u32);
        queue.set_property("max-size-time", 0u64);
        queue.set_property_from_str("leaky", "downstream");
        let sink = gst_app::AppSink::builder().sync(false).build();
        let tile = self.0.clone();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    if let Some(caps) = sample.caps()
                        && tile.caps().as_deref() != Some(caps)
                    {
                        tile.set_caps(Some(&caps.to_owned()));
                    }
                    let Some(buffer) = sample.buffer_owned() else { return Ok(gst::FlowSuccess::Ok) };
                    // Timed by the mosaic's clock on arrival (`do-timestamp`), not the stream's.
                    let mut buffer = buffer;
                    {
                        let buffer = buffer.make_mut();
                        buffer.set_pts(gst::ClockTime::NONE);
                        buffer.set_dts(gst::ClockTime::NONE);
                        buffer.set_duration(gst::ClockTime::NONE);
                    }
                    // A mosaic that has ended (or failed) does not end the stream.
                    let _ = tile.push_buffer(buffer);
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        let sink = sink.upcast::<gst::Element>();
        pipeline.add_many([&tee, &queue, &sink]).map_err(link_error)?;
        gst::Element::link_many([after, &tee]).map_err(link_error)?;
        gst::Element::link_many([&tee, &queue, &sink]).map_err(link_error)?;
        Ok(tee)
    }
}

impl Mosaic {
    /// The mosaic of `streams` tiles, each `[input] width x height`, in a grid of
    /// ceil(sqrt(streams)) columns, to `mosaic` (an output as `--output` takes).
    pub fn build(config: &EdgeConfig, streams: usize, mosaic: &str) -> Result<(Self, Vec<String>)> {
        let output = Output::parse(mosaic)
            .map_err(|e| Error::Invalid(format!("--mosaic: {}", crate::error::chain(&e).replace("--output ", ""))))?;
        let (w, h) = (config.input.width as i32, config.input.height as i32);
        let columns = (streams as f64).sqrt().ceil() as usize;
        let rows = streams.div_ceil(columns);
        let pipeline = gst::Pipeline::new();
        let compositor = make_element("compositor")?;
        // Black until a tile's first frame (and where the grid has no stream).
        compositor.set_property_from_str("background", "black");
        let size = make_element("capsfilter")?;
        size.set_property(
            "caps",
            // 8-bit 4:2:0, as the encoders take it (left alone, compositor picks 16 bits a channel).
            gst::Caps::builder("video/x-raw")
                .field("format", "I420")
                .field("width", w * columns as i32)
                .field("height", h * rows as i32)
                .field("framerate", gst::Fraction::new(config.input.framerate as i32, 1))
                .build(),
        );
        pipeline.add_many([&compositor, &size]).map_err(link_error)?;
        compositor.link(&size).map_err(link_error)?;
        let mut tiles = Vec::with_capacity(streams);
        for i in 0..streams {
            let src = gst_app::AppSrc::builder().is_live(true).do_timestamp(true).format(gst::Format::Time).build();
            let convert = make_element("videoconvert")?;
            let scale = make_element("videoscale")?;
            let tile = make_element("capsfilter")?;
            tile.set_property("caps", gst::Caps::builder("video/x-raw").field("width", w).field("height", h).build());
            let src_element = src.upcast_ref::<gst::Element>();
            pipeline.add_many([src_element, &convert, &scale, &tile]).map_err(link_error)?;
            gst::Element::link_many([src_element, &convert, &scale, &tile]).map_err(link_error)?;
            let pad = compositor
                .request_pad_simple("sink_%u")
                .ok_or_else(|| Error::Pipeline("compositor gave no input pad".into()))?;
            pad.set_property("xpos", w * (i % columns) as i32);
            pad.set_property("ypos", h * (i / columns) as i32);
            tile.static_pad("src").expect("capsfilter has src").link(&pad).map_err(|e| link_error(format!("{e:?}")))?;
            tiles.push(src);
        }
        let mut notes = Vec::new();
        let sink = output.build(&pipeline, &config.output, true, &mut notes)?;
        size.link(&sink).map_err(link_error)?;
        Ok((Self { pipeline, tiles, output, name: mosaic.to_string() }, notes))
    }

    pub fn start(&self) -> Result<()> {
        self.pipeline
            .set_state(gst::State::Playing)
            .map(|_| ())
            .map_err(|_| Error::Pipeline(format!("the mosaic ({}) would not start", self.name)))
    }

    /// The tap of stream `i`.
    pub fn tap(&self, i: usize) -> Tap {
        Tap(self.tiles[i].clone())
    }

    /// Ends every tile and finishes the output.
    pub fn finish(self) -> Result<String> {
        for tile in &self.tiles {
            let _ = tile.end_of_stream();
        }
        let bus = self.pipeline.bus().expect("a pipeline has a bus");
        let message = bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(FINISH_TIMEOUT.as_secs()),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        let _ = self.pipeline.set_state(gst::State::Null);
        let result = match message.as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Eos(_)) => self.output.finish(),
            Some(gst::MessageView::Error(e)) => {
                Err(Error::Pipeline(format!("the mosaic ({}): {}", self.name, e.error())))
            }
            _ => Err(Error::Pipeline(format!(
                "the mosaic ({}) did not finish within {} s of the streams' end",
                self.name,
                FINISH_TIMEOUT.as_secs()
            ))),
        };
        if result.is_err() {
            self.output.discard();
        }
        result.map(|()| self.name)
    }
}
