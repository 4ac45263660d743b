use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer::subclass::prelude::*;
use gstreamer_base as gst_base;
use gstreamer_base::prelude::*;
use gstreamer_base::subclass::prelude::*;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;
use gstreamer_video::subclass::prelude::*;

use super::{BackendProperty, NOTE_MESSAGE, STATS_MESSAGE};
use crate::backend::tensorrt::Precision;
use crate::backend::{self, BackendOptions, Opened, TensorrtOptions};
use crate::frame::{FrameMut, PixelFormat, YuvMatrix, YuvRange, YuvSpec};
use crate::model::Model;
use crate::preprocess::InferenceSize;
use crate::stats::Window;
use crate::translator::FrameTranslator;

static CAT: LazyLock<gst::DebugCategory> =
    LazyLock::new(|| gst::DebugCategory::new("cyclegan", gst::DebugColorFlags::empty(), Some("CycleGAN generator")));

#[derive(Debug, Clone)]
struct Settings {
    model: Option<String>,
    backend: BackendProperty,
    inference_size: InferenceSize,
    strength: f64,
    threads: u32,
    stats_interval_ms: u32,
    precision: Precision,
    engine: Option<String>,
    engine_cache: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            model: None,
            backend: BackendProperty::Auto,
            inference_size: InferenceSize::Auto,
            strength: 1.0,
            threads: 0,
            stats_interval_ms: 1000,
            precision: Precision::default(),
            engine: None,
            engine_cache: None,
        }
    }
}

struct Running {
    translator: FrameTranslator,
    format: PixelFormat,
    yuv: YuvSpec,
    window: Window,
}

#[derive(Default)]
pub struct CycleGan {
    settings: Mutex<Settings>,
    running: Mutex<Option<Running>>,
    /// Model and backend opened in `start`, waiting for caps.
    opened: Mutex<Option<FrameTranslator>>,
}

#[glib::object_subclass]
impl ObjectSubclass for CycleGan {
    const NAME: &'static str = "GstCycleGan";
    type Type = super::CycleGan;
    type ParentType = gst_video::VideoFilter;
}

impl ObjectImpl for CycleGan {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("model")
                    .nick("Model")
                    .blurb("Generator ONNX exported by cyclegan-train (unset: the bundled summer->winter demo)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder::<BackendProperty>("backend")
                    .nick("Backend")
                    .blurb("Inference backend")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("inference-size")
                    .nick("Inference size")
                    .blurb("auto (shorter side = the model's training resolution), a shorter side like 256, or WxH")
                    .default_value(Some("auto"))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("strength")
                    .nick("Strength")
                    .blurb("Blend of the translation with the original frame: 1 translation only, 0 passthrough")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(1.0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("threads")
                    .nick("Threads")
                    .blurb("CPU inference threads (0: all cores)")
                    .maximum(1024)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("precision")
                    .nick("Precision")
                    .blurb(
                        "TensorRT engine precision: fp32, fp16 or int8 (int8 needs the Q/DQ model of cyclegan-calib)",
                    )
                    .default_value(Some(Precision::default().name()))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("engine")
                    .nick("Engine")
                    .blurb(
                        "TensorRT engine file to use, rebuilt there when it does not match (unset: the engine cache)",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("engine-cache")
                    .nick("Engine cache")
                    .blurb("Folder of cached TensorRT engines (unset: ~/.cache/cyclegan-edge/engines)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("stats-interval")
                    .nick("Statistics interval")
                    .blurb("Milliseconds between `cyclegan-stats` element messages on the bus (0: none)")
                    .default_value(1000)
                    .mutable_ready()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = self.settings.lock().unwrap();
        match pspec.name() {
            "model" => settings.model = value.get::<Option<String>>().expect("type checked").filter(|s| !s.is_empty()),
            "backend" => settings.backend = value.get().expect("type checked"),
            "inference-size" => {
                let text = value.get::<Option<String>>().expect("type checked").unwrap_or_default();
                match text.parse() {
                    Ok(size) => settings.inference_size = size,
                    Err(e) => gst::error!(CAT, imp = self, "{e}; keeping {}", settings.inference_size),
                }
            }
            "strength" => {
                settings.strength = value.get().expect("type checked");
                self.obj().set_passthrough(settings.strength == 0.0);
            }
            "threads" => settings.threads = value.get().expect("type checked"),
            "stats-interval" => settings.stats_interval_ms = value.get().expect("type checked"),
            "precision" => {
                let text = value.get::<Option<String>>().expect("type checked").unwrap_or_default();
                match text.parse() {
                    Ok(precision) => settings.precision = precision,
                    Err(e) => gst::error!(CAT, imp = self, "{e}; keeping {}", settings.precision),
                }
            }
            "engine" => {
                settings.engine = value.get::<Option<String>>().expect("type checked").filter(|s| !s.is_empty())
            }
            "engine-cache" => {
                settings.engine_cache = value.get::<Option<String>>().expect("type checked").filter(|s| !s.is_empty())
            }
            other => unreachable!("no property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = self.settings.lock().unwrap();
        match pspec.name() {
            "model" => settings.model.to_value(),
            "backend" => settings.backend.to_value(),
            "inference-size" => settings.inference_size.to_string().to_value(),
            "strength" => settings.strength.to_value(),
            "threads" => settings.threads.to_value(),
            "stats-interval" => settings.stats_interval_ms.to_value(),
            "precision" => settings.precision.name().to_value(),
            "engine" => settings.engine.to_value(),
            "engine-cache" => settings.engine_cache.to_value(),
            other => unreachable!("no property {other}"),
        }
    }
}

impl GstObjectImpl for CycleGan {}

impl ElementImpl for CycleGan {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "CycleGAN translation",
                "Filter/Effect/Video",
                "Translates each frame with a CycleGAN generator (e.g. summer -> winter) on the CPU or TensorRT",
                "cyclegan-edge developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst_video::VideoCapsBuilder::new()
                .format_list(PixelFormat::ALL.iter().map(|f| gst_video::VideoFormat::from_string(f.name())))
                .build();
            vec![
                gst::PadTemplate::new("src", gst::PadDirection::Src, gst::PadPresence::Always, &caps).unwrap(),
                gst::PadTemplate::new("sink", gst::PadDirection::Sink, gst::PadPresence::Always, &caps).unwrap(),
            ]
        });
        TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for CycleGan {
    const MODE: gst_base::subclass::BaseTransformMode = gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.lock().unwrap().clone();
        let model = Model::load(settings.model.as_deref().map(std::path::Path::new))
            .map_err(|e| gst::error_msg!(gst::ResourceError::OpenRead, ("{e}")))?;
        if model.quantized {
            gst::info!(CAT, imp = self, "{} holds Q/DQ nodes; the CPU backend runs it dequantized", model.origin);
        }
        let options = BackendOptions {
            threads: settings.threads as usize,
            onnxruntime: None,
            tensorrt: TensorrtOptions {
                precision: settings.precision,
                engine: settings.engine.as_ref().map(PathBuf::from),
                cache_dir: settings.engine_cache.as_ref().map(PathBuf::from),
                ..TensorrtOptions::default()
            },
        };
        let Opened { backend, note } = backend::open(settings.backend.into(), &model, &options)
            .map_err(|e| gst::error_msg!(gst::LibraryError::Init, ("{e}")))?;
        gst::info!(CAT, imp = self, "{} on {}", model.describe(), backend.describe());
        if let Some(note) = note {
            self.post_note(&note);
        }
        let translator = FrameTranslator::new(
            backend,
            settings.inference_size,
            model.metadata.training_resolution,
            settings.strength as f32,
        );
        *self.opened.lock().unwrap() = Some(translator);
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        self.opened.lock().unwrap().take();
        self.running.lock().unwrap().take();
        Ok(())
    }
}

impl CycleGan {
    /// A line for the person running the pipeline, as a `cyclegan-note` element message.
    fn post_note(&self, text: &str) {
        gst::info!(CAT, imp = self, "{text}");
        let structure = gst::Structure::builder(NOTE_MESSAGE).field("text", text).build();
        let _ = self.obj().post_message(gst::message::Element::builder(structure).src(&*self.obj()).build());
    }
}

fn yuv_spec(info: &gst_video::VideoInfo) -> YuvSpec {
    let colorimetry = info.colorimetry();
    YuvSpec {
        matrix: match colorimetry.matrix() {
            gst_video::VideoColorMatrix::Bt709 => YuvMatrix::Bt709,
            gst_video::VideoColorMatrix::Bt2020 => YuvMatrix::Bt2020,
            _ => YuvMatrix::Bt601,
        },
        range: match colorimetry.range() {
            gst_video::VideoColorRange::Range0_255 => YuvRange::Full,
            _ => YuvRange::Limited,
        },
    }
}

impl VideoFilterImpl for CycleGan {
    fn set_info(
        &self,
        _incaps: &gst::Caps,
        in_info: &gst_video::VideoInfo,
        _outcaps: &gst::Caps,
        _out_info: &gst_video::VideoInfo,
    ) -> Result<(), gst::LoggableError> {
        let format = PixelFormat::from_name(in_info.format().to_str())
            .ok_or_else(|| gst::loggable_error!(CAT, "unsupported format {:?}", in_info.format()))?;
        let mut running = self.running.lock().unwrap();
        // A renegotiation keeps the opened model.
        let translator = match running.take() {
            Some(r) => r.translator,
            None => self
                .opened
                .lock()
                .unwrap()
                .take()
                .ok_or_else(|| gst::loggable_error!(CAT, "caps set before the model was opened"))?,
        };
        let (w, h) = (in_info.width() as usize, in_info.height() as usize);
        let size = translator.inference_size(w, h);
        let backend = translator.backend().describe();
        gst::info!(CAT, imp = self, "{} {w}x{h} -> inference {}x{} on {backend}", format.name(), size.0, size.1);
        *running = Some(Running { translator, format, yuv: yuv_spec(in_info), window: Window::default() });
        Ok(())
    }

    fn transform_frame_ip(
        &self,
        frame: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let started = Instant::now();
        let mut guard = self.running.lock().unwrap();
        let running = guard.as_mut().ok_or(gst::FlowError::NotNegotiated)?;
        let (width, height) = (frame.width() as usize, frame.height() as usize);
        let mut strides = [0usize; 3];
        for (s, v) in strides.iter_mut().zip(frame.plane_stride()) {
            *s = *v as usize;
        }
        let [p0, p1, p2, _] = frame.planes_data_mut();
        let mut view = FrameMut { format: running.format, width, height, planes: [p0, p1, p2], strides };
        if let Err(e) = running.translator.translate_in_place(&mut view, running.yuv) {
            gst::element_imp_error!(self, gst::StreamError::Failed, ("inference failed: {e}"));
            return Err(gst::FlowError::Error);
        }
        running.window.record(started.elapsed());
        let notes = running.translator.take_notes();
        let interval = self.settings.lock().unwrap().stats_interval_ms;
        if interval > 0 && running.window.elapsed() >= Duration::from_millis(interval as u64) {
            let summary = running.window.take();
            let size = running.translator.inference_size(width, height);
            // Described afresh: a backend learns things on its first frames (its CUDA kernels).
            let backend = running.translator.backend().describe();
            let mut structure = gst::Structure::builder(STATS_MESSAGE)
                .field("frames", summary.frames)
                .field("fps", summary.fps)
                .field("latency-p50-ms", summary.p50_ms)
                .field("latency-p95-ms", summary.p95_ms)
                .field("inference-width", size.0 as u32)
                .field("inference-height", size.1 as u32)
                .field("backend", backend.as_str());
            if let Some(ms) = running.translator.backend().device_ms() {
                structure = structure.field("device-ms", ms);
            }
            let structure = structure.build();
            drop(guard);
            let _ = self.obj().post_message(gst::message::Element::builder(structure).src(&*self.obj()).build());
        }
        for note in notes {
            self.post_note(&note);
        }
        Ok(gst::FlowSuccess::Ok)
    }
}
