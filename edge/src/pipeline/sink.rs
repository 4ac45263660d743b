//! `--output`: the window, nothing, or an H.264 file written under a temporary name and renamed
//! into place only once the muxer has finished it.
use std::path::{Path, PathBuf};

use gstreamer as gst;
use gstreamer::prelude::*;

use super::elements::{link_error, make_element};
use super::jetson;
use crate::config::{DisplaySink, Encoder, OutputConfig};
use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// `display://`: a window (autovideosink).
    Display,
    /// `null://`: frames are dropped (benchmarks, tests).
    Null,
    /// A `.mp4` or `.mkv` file.
    File(PathBuf),
}

impl Output {
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "display://" => return Ok(Self::Display),
            "null://" => return Ok(Self::Null),
            _ => {}
        }
        let bad = |m: &str| Error::Invalid(format!("--output {text:?}: {m}"));
        let path = PathBuf::from(text.strip_prefix("file://").unwrap_or(text));
        if text.contains("://") && !text.starts_with("file://") {
            return Err(bad("use display://, null://, or a .mp4 / .mkv file"));
        }
        match path.extension().and_then(|e| e.to_str()) {
            Some("mp4" | "mkv") => {}
            _ => return Err(bad("a file output must end in .mp4 or .mkv (H.264)")),
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(bad(&format!("folder {} does not exist", dir.display())));
        }
        Ok(Self::File(path))
    }

    /// Where a file output is written until it is complete.
    pub fn partial_path(path: &Path) -> PathBuf {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        path.with_file_name(format!(".{name}.partial"))
    }

    /// Adds the sink elements to `pipeline` and returns the element to link translated frames to.
    /// `notes` says where a Jetson element was asked for (`auto`) but software had to do.
    pub fn build(
        &self,
        pipeline: &gst::Pipeline,
        config: &OutputConfig,
        live: bool,
        notes: &mut Vec<String>,
    ) -> Result<gst::Element> {
        let mut chain = vec![make_element("videoconvert")?];
        match self {
            Self::Display => match jetson::display(config.display_sink, notes)? {
                DisplaySink::Nv3dsink => {
                    chain.extend(jetson::to_nvmm(None)?);
                    chain.push(make_element("nv3dsink")?);
                }
                _ => chain.push(make_element("autovideosink")?),
            },
            Self::Null => {
                let sink = make_element("fakesink")?;
                sink.set_property("sync", false);
                chain.push(sink);
            }
            Self::File(path) => {
                let encoder = jetson::encoder(config.encoder, notes)?;
                let partial = Self::partial_path(path);
                std::fs::File::create(&partial)
                    .map_err(|e| Error::Invalid(format!("--output {}: cannot write: {e}", path.display())))?;
                if encoder == Encoder::Nvv4l2h264enc {
                    chain.extend(jetson::hardware_encoder(config.bitrate_kbps)?);
                } else {
                    // x264enc would pick High 4:4:4 from RGB input, which most players refuse.
                    let caps = make_element("capsfilter")?;
                    caps.set_property("caps", gst::Caps::builder("video/x-raw").field("format", "I420").build());
                    let encode = make_element("x264enc")?;
                    encode.set_property("bitrate", config.bitrate_kbps);
                    encode.set_property_from_str("speed-preset", "veryfast");
                    if live {
                        encode.set_property_from_str("tune", "zerolatency");
                    }
                    chain.extend([caps, encode]);
                }
                let is_mkv = path.extension().is_some_and(|e| e == "mkv");
                chain.push(make_element(if is_mkv { "matroskamux" } else { "mp4mux" })?);
                let sink = make_element("filesink")?;
                sink.set_property("location", partial.to_string_lossy().as_ref());
                sink.set_property("sync", false);
                chain.push(sink);
            }
        }
        pipeline.add_many(&chain).map_err(link_error)?;
        gst::Element::link_many(&chain).map_err(link_error)?;
        Ok(chain[0].clone())
    }

    /// After a clean end: the file takes its final name.
    pub fn finish(&self) -> Result<()> {
        if let Self::File(path) = self {
            std::fs::rename(Self::partial_path(path), path)
                .map_err(|e| Error::Invalid(format!("--output {}: cannot finish the file: {e}", path.display())))?;
        }
        Ok(())
    }

    /// After a failure: nothing half-written is left under the output's name.
    pub fn discard(&self) {
        if let Self::File(path) = self {
            let _ = std::fs::remove_file(Self::partial_path(path));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_parse_and_bad_ones_say_what_to_use() {
        assert_eq!(Output::parse("display://").unwrap(), Output::Display);
        assert_eq!(Output::parse("null://").unwrap(), Output::Null);
        assert_eq!(Output::parse("out.mp4").unwrap(), Output::File("out.mp4".into()));
        assert!(Output::parse("out.avi").unwrap_err().to_string().contains(".mp4"));
        assert!(Output::parse("/no/such/dir/out.mp4").unwrap_err().to_string().contains("does not exist"));
        assert!(Output::parse("rtmp://x").is_err());
        assert_eq!(Output::partial_path(Path::new("a/b.mp4")), PathBuf::from("a/.b.mp4.partial"));
    }
}
