//! The `cyclegan` GStreamer element (registration here, the subclass in `imp`).
mod imp;
mod messages;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer::subclass::prelude::ObjectSubclassIsExt;

use crate::backend::tensorrt::PrecisionChoice;
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

/// The `precision` property's values (TensorRT's engine precision).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstCycleGanPrecision")]
pub enum PrecisionProperty {
    #[enum_value(name = "FP32", nick = "fp32")]
    Fp32,
    #[enum_value(name = "FP16 (an FP16 graph on TensorRT 11)", nick = "fp16")]
    Fp16,
    #[enum_value(name = "INT8 (the Q/DQ model of cyclegan-calib)", nick = "int8")]
    Int8,
    #[enum_value(
        name = "The fastest engine on this device that keeps 35 dB (decided on the first frame)",
        nick = "auto"
    )]
    Auto,
}

impl Default for PrecisionProperty {
    fn default() -> Self {
        PrecisionChoice::from(crate::backend::tensorrt::DEFAULT_PRECISION).into()
    }
}

impl From<PrecisionProperty> for PrecisionChoice {
    fn from(p: PrecisionProperty) -> Self {
        match p {
            PrecisionProperty::Fp32 => Self::Fp32,
            PrecisionProperty::Fp16 => Self::Fp16,
            PrecisionProperty::Int8 => Self::Int8,
            PrecisionProperty::Auto => Self::Auto,
        }
    }
}

impl From<PrecisionChoice> for PrecisionProperty {
    fn from(p: PrecisionChoice) -> Self {
        match p {
            PrecisionChoice::Fp32 => Self::Fp32,
            PrecisionChoice::Fp16 => Self::Fp16,
            PrecisionChoice::Int8 => Self::Int8,
            PrecisionChoice::Auto => Self::Auto,
        }
    }
}

/// Registers `cyclegan` with `plugin` (the `.so`), or statically when `plugin` is `None`.
pub fn register(plugin: Option<&gst::Plugin>) -> Result<(), glib::BoolError> {
    gst::Element::register(plugin, "cyclegan", gst::Rank::NONE, CycleGan::static_type())
}
