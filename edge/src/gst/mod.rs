//! The `cyclegan` GStreamer element (registration here, the subclass in `imp`).
mod imp;
mod messages;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer::subclass::prelude::ObjectSubclassIsExt;

pub use messages::{NOTE_MESSAGE, STATS_MESSAGE, Stats, StatsError};

glib::wrapper! {
    /// Translates video frames with a CycleGAN generator.
    pub struct CycleGan(ObjectSubclass<imp::CycleGan>)
        @extends gstreamer_video::VideoFilter, gstreamer_base::BaseTransform, gst::Element, gst::Object;
}

impl CycleGan {
    /// Gives the element a model its caller has already loaded and validated, so that `start`
    /// does not read and decode the file again (`model` must name the same file).
    pub fn set_loaded_model(&self, model: crate::model::Model) {
        self.imp().set_loaded_model(model);
    }
}

/// The `backend` property's values.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstCycleGanBackend")]
pub enum BackendProperty {
    #[default]
    #[enum_value(name = "TensorRT where available, else the CPU", nick = "auto")]
    Auto,
    #[enum_value(name = "ONNX Runtime on the CPU", nick = "cpu")]
    Cpu,
    #[enum_value(name = "TensorRT on an NVIDIA GPU", nick = "tensorrt")]
    Tensorrt,
}

impl From<BackendProperty> for crate::backend::BackendKind {
    fn from(b: BackendProperty) -> Self {
        match b {
            BackendProperty::Auto => Self::Auto,
            BackendProperty::Cpu => Self::Cpu,
            BackendProperty::Tensorrt => Self::Tensorrt,
        }
    }
}

impl From<crate::backend::BackendKind> for BackendProperty {
    fn from(b: crate::backend::BackendKind) -> Self {
        match b {
            crate::backend::BackendKind::Auto => Self::Auto,
            crate::backend::BackendKind::Cpu => Self::Cpu,
            crate::backend::BackendKind::Tensorrt => Self::Tensorrt,
        }
    }
}

/// Registers `cyclegan` with `plugin` (the `.so`), or statically when `plugin` is `None`.
pub fn register(plugin: Option<&gst::Plugin>) -> Result<(), glib::BoolError> {
    gst::Element::register(plugin, "cyclegan", gst::Rank::NONE, CycleGan::static_type())
}
