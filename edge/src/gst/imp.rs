use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer::subclass::prelude::*;
use gstreamer_base as gst_base;
use gstreamer_base::prelude::*;
use gstreamer_base::subclass::base_transform::GenerateOutputSuccess;
use gstreamer_base::subclass::prelude::*;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;
use gstreamer_video::subclass::prelude::*;

use super::{BackendProperty, NOTE_MESSAGE, PrecisionProperty, Stats};
use crate::backend::tensorrt::Notify;
use crate::backend::{self, BackendOptions, Opened, TensorrtOptions};
use crate::batch::BatchOptions;
use crate::config::InferenceConfig;
use crate::frame::{FrameMut, FrameRef, PixelFormat, YuvMatrix, YuvRange, YuvSpec};
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
    temporal_smoothing: f64,
    threads: u32,
    stats_interval_ms: u32,
    precision: PrecisionProperty,
    engine: Option<String>,
    engine_cache: Option<String>,
    /// 0: the backend's choice.
    frames_in_flight: u32,
    share_model: bool,
    batch_window_ms: f64,
    max_batch: u32,
    /// 0: one.
    concurrent_batches: u32,
}

/// Milliseconds between statistics messages unless set.
const DEFAULT_STATS_INTERVAL_MS: u32 = 1000;

/// The `[inference]` defaults of `cyclegan-edge run`'s configuration: one set for both.
impl Default for Settings {
    fn default() -> Self {
        let d = InferenceConfig::default();
        Self {
            model: d.model.map(|p| p.display().to_string()),
            backend: d.backend.into(),
            inference_size: d.inference_size.parse().expect("the default inference size is valid"),
            strength: d.strength,
            temporal_smoothing: d.temporal_smoothing,
            threads: d.threads as u32,
            stats_interval_ms: DEFAULT_STATS_INTERVAL_MS,
            precision: d.precision.into(),
            engine: d.engine.map(|p| p.display().to_string()),
            engine_cache: d.engine_cache.map(|p| p.display().to_string()),
            frames_in_flight: d.frames_in_flight,
            share_model: d.share_model,
            batch_window_ms: d.batch_window_ms,
            max_batch: d.max_batch,
            concurrent_batches: d.concurrent_batches,
        }
    }
}

struct Running {
    translator: FrameTranslator,
    info: gst_video::VideoInfo,
    format: PixelFormat,
    yuv: YuvSpec,
    window: Window,
    /// Frames the element holds at most (1: each leaves before the next comes in).
    depth: usize,
    /// Submitted buffers, oldest first, with their arrival.
    pending: VecDeque<(gst::Buffer, Instant)>,
}

/// Where the element stands between `start`, caps and `stop`.
enum State {
    /// Not started. A model the application loaded already (`set_loaded_model`) waits here, and
    /// the next `start` uses it instead of reading `model` again.
    Stopped { loaded: Option<Box<Model>> },
    /// Model and backend opened in `start`, waiting for caps.
    Opened(Box<FrameTranslator>),
    /// Caps set: translating frames. (Each variant holds a box: their contents differ in size
    /// by hundreds of bytes.)
    Negotiated(Box<Running>),
}

impl Default for State {
    fn default() -> Self {
        Self::Stopped { loaded: None }
    }
}

#[derive(Default)]
pub struct CycleGan {
    settings: Mutex<Settings>,
    /// Held while a frame is submitted or finished, which can take long (a slow model, a
    /// first-frame TensorRT engine build), so queries never take it.
    state: Mutex<State>,
    /// What the frames in flight add to the latency, in nanoseconds, for the latency query.
    held_latency_ns: AtomicU64,
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
            let d = Settings::default();
            vec![
                glib::ParamSpecString::builder("model")
                    .nick("Model")
                    .blurb("Generator ONNX exported by cyclegan-train, or pretrained:NAME once `cyclegan-edge models get NAME` has fetched it (unset: the bundled summer->winter demo)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder::<BackendProperty>("backend")
                    .nick("Backend")
                    .blurb("Inference backend")
                    .default_value(d.backend)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("inference-size")
                    .nick("Inference size")
                    .blurb("auto (shorter side = the model's training resolution), a shorter side like 256, or WxH")
                    .default_value(Some(d.inference_size.to_string().as_str()))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("strength")
                    .nick("Strength")
                    .blurb("Blend of the translation with the original frame: 1 translation only, 0 passthrough")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(d.strength)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("temporal-smoothing")
                    .nick("Temporal smoothing")
                    .blurb(
                        "Less flicker on still scenes: blends the previous output into the current one where the \
                         input did not change, scaling the flicker by 1 - this (0.5 halves it; 0: off, each frame \
                         on its own). Moving things are not blended. Starts afresh after a flush, new caps, a \
                         DISCONT buffer, and when switched on",
                    )
                    .minimum(*crate::smoothing::RANGE.start())
                    .maximum(*crate::smoothing::RANGE.end())
                    .default_value(d.temporal_smoothing)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("threads")
                    .nick("Threads")
                    .blurb("CPU inference threads of each concurrent batch (0: all cores, split between them)")
                    .maximum(1024)
                    .default_value(d.threads)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder::<PrecisionProperty>("precision")
                    .nick("Precision")
                    .blurb("TensorRT engine precision (int8 needs the Q/DQ model of cyclegan-calib)")
                    .default_value(d.precision)
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
                glib::ParamSpecUInt::builder("frames-in-flight")
                    .nick("Frames in flight")
                    .blurb(
                        "Frames translated at once: 2 overlaps one frame's copies with another's GPU work at one \
                         frame more latency, 1 is the lowest latency (0: the backend's choice, 2 on TensorRT, 1 on \
                         the CPU)",
                    )
                    .maximum(8)
                    .default_value(d.frames_in_flight)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("share-model")
                    .nick("Share model")
                    .blurb(
                        "Share one loaded model with the other cyclegan elements of this process that use the same \
                         model and settings, translating their frames in batches (CPU backend; TensorRT engines \
                         are per element for now); false: load its own",
                    )
                    .default_value(d.share_model)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("batch-window-ms")
                    .nick("Batch window")
                    .blurb(
                        "Milliseconds the oldest waiting frame of a shared model waits for other elements' frames \
                         of its size to run with it (0: no batching)",
                    )
                    .minimum(0.0)
                    .maximum(crate::config::MAX_BATCH_WINDOW_MS)
                    .default_value(d.batch_window_ms)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-batch")
                    .nick("Maximum batch")
                    .blurb(
                        "Frames of several elements translated in one batch at most (0: the backend's choice, 1 on \
                         the CPU, where a batch runs no faster than its frames one by one)",
                    )
                    .maximum(crate::config::MAX_BATCH)
                    .default_value(d.max_batch)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("concurrent-batches")
                    .nick("Concurrent batches")
                    .blurb(
                        "Batches of a shared model translated at once, each on its share of the CPU cores with \
                         buffers of its own and one copy of the model (0: one; cyclegan-edge run takes one per \
                         stream up to the cores)",
                    )
                    .maximum(crate::config::MAX_CONCURRENT_BATCHES)
                    .default_value(d.concurrent_batches)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("stats-interval")
                    .nick("Statistics interval")
                    .blurb("Milliseconds between `cyclegan-stats` element messages on the bus (0: none)")
                    .default_value(d.stats_interval_ms)
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
            // GLib has checked the range (NaN is outside it too); frames read it as they come.
            "temporal-smoothing" => settings.temporal_smoothing = value.get().expect("type checked"),
            "threads" => settings.threads = value.get().expect("type checked"),
            "stats-interval" => settings.stats_interval_ms = value.get().expect("type checked"),
            "frames-in-flight" => settings.frames_in_flight = value.get().expect("type checked"),
            "share-model" => settings.share_model = value.get().expect("type checked"),
            "batch-window-ms" => settings.batch_window_ms = value.get().expect("type checked"),
            "max-batch" => settings.max_batch = value.get().expect("type checked"),
            "concurrent-batches" => settings.concurrent_batches = value.get().expect("type checked"),
            "precision" => settings.precision = value.get().expect("type checked"),
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
            "temporal-smoothing" => settings.temporal_smoothing.to_value(),
            "threads" => settings.threads.to_value(),
            "stats-interval" => settings.stats_interval_ms.to_value(),
            "frames-in-flight" => settings.frames_in_flight.to_value(),
            "share-model" => settings.share_model.to_value(),
            "batch-window-ms" => settings.batch_window_ms.to_value(),
            "max-batch" => settings.max_batch.to_value(),
            "concurrent-batches" => settings.concurrent_batches.to_value(),
            "precision" => settings.precision.to_value(),
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
        let mut state = self.state.lock().unwrap();
        // Taken, not copied: a restart reads `model` again.
        let loaded = match std::mem::take(&mut *state) {
            State::Stopped { loaded } => loaded,
            State::Opened(_) | State::Negotiated(_) => None,
        };
        let model = match loaded {
            Some(model) => *model,
            None => crate::pretrained::load(settings.model.as_deref().map(std::path::Path::new))
                .map_err(|e| gst::error_msg!(gst::ResourceError::OpenRead, ("{}", crate::error::chain(&e))))?,
        };
        if model.quantized {
            gst::info!(CAT, imp = self, "{} holds Q/DQ nodes; the CPU backend runs it dequantized", model.origin);
        }
        let options = BackendOptions {
            threads: settings.threads as usize,
            onnxruntime: None,
            tensorrt: TensorrtOptions {
                engine: settings.engine.as_ref().map(PathBuf::from),
                cache_dir: settings.engine_cache.as_ref().map(PathBuf::from),
                // Before a build starts, not after (the first frame waits minutes on a Jetson).
                notify: Some(Notify(Arc::new({
                    let element = self.obj().downgrade();
                    move |text: &str| {
                        if let Some(element) = element.upgrade() {
                            element.imp().post_note(text);
                        }
                    }
                }))),
                ..TensorrtOptions::default()
            }
            .with_choice(settings.precision.into()),
        };
        let opened = if settings.share_model {
            let batch = BatchOptions {
                window: Duration::from_secs_f64(settings.batch_window_ms / 1e3),
                max_batch: settings.max_batch as usize,
                concurrent: (settings.concurrent_batches as usize).max(1),
            };
            backend::shared::open(settings.backend.into(), &model, &options, batch)
        } else {
            backend::open(settings.backend.into(), &model, &options)
        };
        let Opened { backend, note, .. } =
            opened.map_err(|e| gst::error_msg!(gst::LibraryError::Init, ("{}", crate::error::chain(&e))))?;
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
        *state = State::Opened(Box::new(translator));
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        self.held_latency_ns.store(0, Ordering::Release);
        if let State::Negotiated(mut running) = std::mem::take(&mut *self.state.lock().unwrap()) {
            running.translator.discard();
        }
        Ok(())
    }

    /// Takes each buffer, submits it, and gives back the oldest once `depth` are in flight.
    fn generate_output(&self) -> Result<GenerateOutputSuccess, gst::FlowError> {
        if self.obj().is_passthrough() {
            // Strength became 0 while frames were in flight: they go first.
            self.drain()?;
            return self.parent_generate_output();
        }
        let Some(buffer) = self.take_queued_buffer() else {
            return Ok(GenerateOutputSuccess::NoOutput);
        };
        let smoothing = self.settings.lock().unwrap().temporal_smoothing;
        let mut state = self.state.lock().unwrap();
        let State::Negotiated(running) = &mut *state else { return Err(gst::FlowError::NotNegotiated) };
        if let Err(e) = running.submit(buffer, smoothing) {
            gst::element_imp_error!(self, gst::StreamError::Failed, ("inference failed: {}", crate::error::chain(&e)));
            return Err(gst::FlowError::Error);
        }
        if running.pending.len() < running.depth {
            return Ok(GenerateOutputSuccess::NoOutput);
        }
        drop(state);
        Ok(GenerateOutputSuccess::Buffer(self.finish_oldest()?.expect("one is in flight")))
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        match event.view() {
            gst::EventView::FlushStop(_) => {
                if let State::Negotiated(running) = &mut *self.state.lock().unwrap() {
                    // Also restarts the temporal smoothing: after a seek the last frame is not
                    // the next one's past.
                    running.translator.discard();
                    running.pending.clear();
                }
            }
            // EOS, caps, segments, gaps ...: the frames in flight belong before them.
            _ if event.is_serialized() => {
                if let Err(e) = self.drain() {
                    gst::debug!(CAT, imp = self, "frames in flight not pushed before {:?}: {e:?}", event.type_());
                }
            }
            _ => {}
        }
        self.parent_sink_event(event)
    }

    fn query(&self, direction: gst::PadDirection, query: &mut gst::QueryRef) -> bool {
        if direction != gst::PadDirection::Src || !matches!(query.view(), gst::QueryView::Latency(_)) {
            return BaseTransformImplExt::parent_query(self, direction, query);
        }
        if !BaseTransformImplExt::parent_query(self, direction, query) {
            return false;
        }
        let held = gst::ClockTime::from_nseconds(self.held_latency_ns.load(Ordering::Acquire));
        if let gst::QueryViewMut::Latency(latency) = query.view_mut() {
            let (live, min, max) = latency.result();
            latency.set(live, min + held, max.map(|max| max + held));
        }
        true
    }
}

impl Running {
    /// Starts translating `buffer`, temporally smoothed by `smoothing`, and keeps it until its
    /// result is written.
    fn submit(&mut self, buffer: gst::Buffer, smoothing: f64) -> crate::Result<()> {
        let arrived = Instant::now();
        self.translator.set_temporal_smoothing(smoothing)?;
        // A gap or a cut upstream (dropped frames, a new stream): the previous frame is not
        // this one's past.
        if buffer.flags().contains(gst::BufferFlags::DISCONT) {
            self.translator.reset_smoothing();
        }
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer.as_ref(), &self.info)
            .map_err(|e| crate::Error::Invalid(format!("mapping the frame: {e}")))?;
        let [p0, p1, p2, _] = frame.planes_data();
        let view = FrameRef {
            format: self.format,
            width: frame.width() as usize,
            height: frame.height() as usize,
            planes: [p0, p1, p2],
            strides: strides(frame.plane_stride()),
        };
        self.translator.submit(&view, self.yuv)?;
        drop(frame);
        if let Some(frames) = self.translator.backend().batch_size() {
            self.window.record_batch(frames);
        }
        self.pending.push_back((buffer, arrived));
        Ok(())
    }

    /// The oldest buffer in flight with its translation written in, if any.
    fn finish(&mut self) -> crate::Result<Option<gst::Buffer>> {
        let Some((mut buffer, arrived)) = self.pending.pop_front() else { return Ok(None) };
        {
            let mut frame = gst_video::VideoFrameRef::from_buffer_ref_writable(buffer.make_mut(), &self.info)
                .map_err(|e| crate::Error::Invalid(format!("mapping the frame: {e}")))?;
            let (width, height) = (frame.width() as usize, frame.height() as usize);
            let strides = strides(frame.plane_stride());
            let [p0, p1, p2, _] = frame.planes_data_mut();
            self.translator.finish(&mut FrameMut {
                format: self.format,
                width,
                height,
                planes: [p0, p1, p2],
                strides,
            })?;
        }
        self.window.record(arrived.elapsed());
        Ok(Some(buffer))
    }

    /// The statistics of the frames since the last message.
    fn stats(&mut self) -> Stats {
        let summary = self.window.take();
        let size = self.translator.inference_size(self.info.width() as usize, self.info.height() as usize);
        Stats {
            frames: summary.frames,
            fps: summary.fps,
            latency_p50_ms: summary.p50_ms,
            latency_p95_ms: summary.p95_ms,
            inference_width: size.0 as u32,
            inference_height: size.1 as u32,
            frames_in_flight: self.depth as u32,
            // Described afresh: a backend learns things on its first frames (its CUDA kernels).
            backend: self.translator.backend().describe(),
            device_ms: self.translator.backend().device_ms(),
            copied_bytes: self.translator.backend().copied_bytes(),
            batch_mean: summary.batch_mean,
            shared_by: self.translator.backend().shared_by().map(|n| n as u32),
        }
    }

    /// What holding `depth - 1` frames adds to the pipeline's latency.
    fn held_latency(&self) -> gst::ClockTime {
        let fps = self.info.fps();
        if self.depth <= 1 || fps.numer() <= 0 {
            return gst::ClockTime::ZERO;
        }
        let frame = gst::ClockTime::SECOND.mul_div_ceil(fps.denom() as u64, fps.numer() as u64).unwrap_or_default();
        frame * (self.depth as u64 - 1)
    }
}

fn strides(gst: &[i32]) -> [usize; 3] {
    let mut strides = [0usize; 3];
    for (s, v) in strides.iter_mut().zip(gst) {
        *s = *v as usize;
    }
    strides
}

impl CycleGan {
    pub(super) fn set_loaded_model(&self, model: Model) {
        let mut state = self.state.lock().unwrap();
        match &mut *state {
            State::Stopped { loaded } => *loaded = Some(Box::new(model)),
            State::Opened(_) | State::Negotiated(_) => {
                gst::warning!(CAT, imp = self, "a model given after start is used from the next start");
                *state = State::Stopped { loaded: Some(Box::new(model)) };
            }
        }
    }

    /// The oldest frame in flight, translated, after which statistics and notes go on the bus.
    fn finish_oldest(&self) -> Result<Option<gst::Buffer>, gst::FlowError> {
        let mut state = self.state.lock().unwrap();
        let State::Negotiated(running) = &mut *state else { return Err(gst::FlowError::NotNegotiated) };
        let buffer = match running.finish() {
            Ok(buffer) => buffer,
            Err(e) => {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Failed,
                    ("inference failed: {}", crate::error::chain(&e))
                );
                return Err(gst::FlowError::Error);
            }
        };
        let notes = running.translator.take_notes();
        let interval = self.settings.lock().unwrap().stats_interval_ms;
        let stats = (interval > 0 && running.window.elapsed() >= Duration::from_millis(interval as u64))
            .then(|| running.stats());
        drop(state);
        if let Some(stats) = stats {
            let structure = gst::Structure::from(&stats);
            let _ = self.obj().post_message(gst::message::Element::builder(structure).src(&*self.obj()).build());
        }
        for note in notes {
            self.post_note(&note);
        }
        Ok(buffer)
    }

    /// Pushes every frame in flight, oldest first.
    fn drain(&self) -> Result<(), gst::FlowError> {
        while let Some(buffer) = self.finish_oldest()? {
            self.obj().src_pad().push(buffer)?;
        }
        Ok(())
    }

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
        let mut state = self.state.lock().unwrap();
        // A renegotiation keeps the opened model.
        let mut translator = match std::mem::take(&mut *state) {
            State::Negotiated(r) => r.translator,
            State::Opened(translator) => *translator,
            State::Stopped { .. } => return Err(gst::loggable_error!(CAT, "caps set before the model was opened")),
        };
        // New caps are another stream (format, size, colours): the smoothing starts afresh.
        translator.reset_smoothing();
        let (w, h) = (in_info.width() as usize, in_info.height() as usize);
        let size = translator.inference_size(w, h);
        let backend = translator.backend().describe();
        let depth = match self.settings.lock().unwrap().frames_in_flight {
            0 => translator.backend().frames_in_flight(),
            n => n as usize,
        };
        gst::info!(
            CAT,
            imp = self,
            "{} {w}x{h} -> inference {}x{} on {backend}, {depth} frames in flight",
            format.name(),
            size.0,
            size.1
        );
        let running = Running {
            translator,
            info: in_info.clone(),
            format,
            yuv: yuv_spec(in_info),
            window: Window::default(),
            depth,
            pending: VecDeque::new(),
        };
        let held = running.held_latency();
        *state = State::Negotiated(Box::new(running));
        drop(state);
        self.held_latency_ns.store(held.nseconds(), Ordering::Release);
        // Holding frames adds latency: the pipeline asks again.
        if held > gst::ClockTime::ZERO {
            let _ = self.obj().post_message(gst::message::Latency::builder().src(&*self.obj()).build());
        }
        Ok(())
    }
}
