//! Making GStreamer elements, with errors that say which package to install.
use gstreamer as gst;

use crate::{Error, Result};

pub(super) fn make_element(factory: &str) -> Result<gst::Element> {
    gst::ElementFactory::make(factory).build().map_err(|_| {
        Error::Setup(format!(
            "GStreamer element `{factory}` is missing: install gstreamer1.0-plugins-base, -good, -ugly and \
             gstreamer1.0-libav (./scripts/install.sh does)"
        ))
    })
}

pub(super) fn link_error(e: impl std::fmt::Display) -> Error {
    Error::Pipeline(format!("cannot build the pipeline: {e}"))
}
