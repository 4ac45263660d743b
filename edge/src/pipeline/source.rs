//! `--input`: what each kind of URI becomes in the pipeline.
use std::path::{Path, PathBuf};

use gstreamer as gst;
use gstreamer::prelude::*;

use super::elements::{link_error, make_element};
use crate::config::InputConfig;
use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// `test://[PATTERN]`: videotestsrc (pattern names as in `gst-inspect-1.0 videotestsrc`).
    Test { pattern: Option<String> },
    /// A local video file (any container decodebin reads).
    File(PathBuf),
    /// `v4l2:///dev/videoN`.
    Camera(PathBuf),
    /// `csi://N`: a Jetson's CSI camera (nvarguscamerasrc sensor-id N).
    Csi(u32),
    /// `rtsp://...`
    Rtsp(String),
    /// Any other URI with a scheme GStreamer handles (`http://...`).
    Uri(String),
}

impl Input {
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |m: String| Error::Invalid(format!("--input {text:?}: {m}"));
        if let Some(pattern) = text.strip_prefix("test://") {
            return Ok(Self::Test { pattern: (!pattern.is_empty()).then(|| pattern.to_string()) });
        }
        if let Some(device) = text.strip_prefix("v4l2://") {
            if !device.starts_with("/dev/") {
                return Err(bad("name the device like v4l2:///dev/video0".into()));
            }
            return Ok(Self::Camera(PathBuf::from(device)));
        }
        if let Some(sensor) = text.strip_prefix("csi://") {
            let sensor = if sensor.is_empty() { Ok(0) } else { sensor.parse() };
            return sensor.map(Self::Csi).map_err(|_| bad("name the sensor like csi://0".into()));
        }
        if text.starts_with("rtsp://") || text.starts_with("rtsps://") {
            return Ok(Self::Rtsp(text.to_string()));
        }
        if let Some(path) = text.strip_prefix("file://") {
            return Self::file(Path::new(path), &bad);
        }
        if text.contains("://") {
            return Ok(Self::Uri(text.to_string()));
        }
        if text.is_empty() {
            return Err(bad("empty; use test://, a video file, v4l2:///dev/videoN, csi://0 or rtsp://...".into()));
        }
        Self::file(Path::new(text), &bad)
    }

    fn file(path: &Path, bad: &dyn Fn(String) -> Error) -> Result<Self> {
        if !path.is_file() {
            return Err(bad(format!("no such file {}", path.display())));
        }
        Ok(Self::File(path.canonicalize().map_err(|e| bad(e.to_string()))?))
    }

    /// Cameras and streams deliver frames in real time whether or not we keep up.
    pub fn is_live(&self, config: &InputConfig) -> bool {
        match self {
            Self::Test { .. } => config.live,
            Self::Camera(_) | Self::Csi(_) | Self::Rtsp(_) => true,
            Self::File(_) | Self::Uri(_) => false,
        }
    }

    /// Cameras and network streams can be missing at start or go away mid-run and come back
    /// later (unplugged, rebooted, out of range); a file or a test pattern cannot.
    pub fn can_come_back(&self) -> bool {
        matches!(self, Self::Camera(_) | Self::Csi(_) | Self::Rtsp(_) | Self::Uri(_))
    }

    /// Adds the source elements to `pipeline`; `link` is called with the pad of decoded raw video
    /// (right away, or later for inputs whose streams appear when decoding starts).
    pub fn build(
        &self,
        pipeline: &gst::Pipeline,
        config: &InputConfig,
        link: impl Fn(&gst::Pad) -> Result<()> + Send + Sync + 'static,
    ) -> Result<()> {
        let raw_caps = || {
            gst::Caps::builder("video/x-raw")
                .field("width", config.width as i32)
                .field("height", config.height as i32)
                .field("framerate", gst::Fraction::new(config.framerate as i32, 1))
                .build()
        };
        match self {
            Self::Test { pattern } => {
                let src = make_element("videotestsrc")?;
                if let Some(p) = pattern {
                    set_pattern(&src, p)?;
                }
                src.set_property("is-live", config.live);
                if config.num_frames > 0 {
                    src.set_property("num-buffers", config.num_frames.min(i32::MAX as u64) as i32);
                }
                let filter = make_element("capsfilter")?;
                filter.set_property("caps", raw_caps());
                pipeline.add_many([&src, &filter]).map_err(link_error)?;
                src.link(&filter).map_err(link_error)?;
                link(&filter.static_pad("src").expect("capsfilter has src"))
            }
            Self::Camera(device) => {
                let src = make_element("v4l2src")?;
                src.set_property("device", device.to_string_lossy().as_ref());
                let decode = make_element("decodebin")?;
                pipeline.add_many([&src, &decode]).map_err(link_error)?;
                src.link(&decode).map_err(link_error)?;
                link_decoded(&decode, link);
                Ok(())
            }
            Self::Csi(sensor) => {
                let chain = super::jetson::csi_camera(*sensor, config.width, config.height, config.framerate)?;
                pipeline.add_many(&chain).map_err(link_error)?;
                gst::Element::link_many(&chain).map_err(link_error)?;
                link(&chain[chain.len() - 1].static_pad("src").expect("capsfilter has src"))
            }
            Self::File(path) => {
                let uri = gst::glib::filename_to_uri(path, None)
                    .map_err(|e| Error::Invalid(format!("--input {}: {e}", path.display())))?;
                self.uri_source(pipeline, uri.as_str(), config, link)
            }
            Self::Rtsp(uri) | Self::Uri(uri) => self.uri_source(pipeline, uri, config, link),
        }
    }

    fn uri_source(
        &self,
        pipeline: &gst::Pipeline,
        uri: &str,
        config: &InputConfig,
        link: impl Fn(&gst::Pad) -> Result<()> + Send + Sync + 'static,
    ) -> Result<()> {
        let decode = make_element("uridecodebin")?;
        decode.set_property("uri", uri);
        let timeout_us = config.timeout_s.saturating_mul(1_000_000);
        decode.connect("source-setup", false, move |args| {
            let source = args[1].get::<gst::Element>().expect("source-setup passes the source");
            // rtspsrc: give up on a server that does not answer instead of waiting forever.
            if source.find_property("tcp-timeout").is_some() {
                source.set_property("tcp-timeout", timeout_us);
                source.set_property("timeout", timeout_us);
                source.set_property("latency", 100u32);
            }
            None
        });
        pipeline.add(&decode).map_err(link_error)?;
        link_decoded(&decode, link);
        Ok(())
    }

    /// What to check when this input delivers no frame at all.
    pub fn no_frame_hint(&self) -> &'static str {
        match self {
            Self::Csi(_) => {
                "is the CSI camera connected and free? `sudo systemctl restart nvargus-daemon` frees a stuck one"
            }
            _ => "is the camera or stream there?",
        }
    }
}

/// Links the first raw video pad a decodebin exposes; other streams (audio) are left unlinked.
fn link_decoded(decode: &gst::Element, link: impl Fn(&gst::Pad) -> Result<()> + Send + Sync + 'static) {
    let linked = std::sync::atomic::AtomicBool::new(false);
    decode.connect_pad_added(move |element, pad| {
        let is_video = pad
            .current_caps()
            .and_then(|c| c.structure(0).map(|s| s.name().starts_with("video/x-raw")))
            .unwrap_or(false);
        if !is_video || linked.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        if let Err(e) = link(pad) {
            gst::element_error!(element, gst::CoreError::Negotiation, ("{e}"));
        }
    });
}

/// Sets videotestsrc's `pattern` by nick, listing the valid ones when `nick` is not one.
fn set_pattern(src: &gst::Element, nick: &str) -> Result<()> {
    let pspec = src.find_property("pattern").expect("videotestsrc has `pattern`");
    let class = pspec.downcast_ref::<gst::glib::ParamSpecEnum>().expect("an enum property").enum_class();
    let value = class.value_by_nick(nick).ok_or_else(|| {
        let names: Vec<&str> = class.values().iter().map(|v| v.nick()).collect();
        Error::Invalid(format!("--input test://{nick}: no such pattern; use one of {}", names.join(", ")))
    })?;
    src.set_property_from_value("pattern", &class.to_value(value.value()).expect("a value of this enum"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csi_inputs_name_a_sensor() {
        assert_eq!(Input::parse("csi://1").unwrap(), Input::Csi(1));
        assert_eq!(Input::parse("csi://").unwrap(), Input::Csi(0));
        assert!(Input::parse("csi://front").unwrap_err().to_string().contains("csi://0"));
        assert!(Input::Csi(0).is_live(&InputConfig::default()));
    }
}
