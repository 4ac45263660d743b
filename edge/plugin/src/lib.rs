//! `libgstcyclegan.so`: the `cyclegan` element as a GStreamer plugin
//! (`GST_PLUGIN_PATH=target/release gst-inspect-1.0 cyclegan`).
use gstreamer as gst;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), gst::glib::BoolError> {
    cyclegan_edge::gst::register(Some(plugin))
}

gst::plugin_define!(
    cyclegan,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    env!("CARGO_PKG_VERSION"),
    "MIT/X11",
    "gst-plugin-cyclegan",
    "gst-plugin-cyclegan",
    "https://example.invalid/cyclegan-edge"
);
