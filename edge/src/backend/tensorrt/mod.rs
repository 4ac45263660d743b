//! The TensorRT backend: engines built from our ONNX (or loaded from the engine cache) and run on
//! the GPU. TensorRT and CUDA are both opened at run time; where either is missing the backend
//! says so and `auto` falls back to the CPU.
pub mod auto;
mod cache;
mod frames;
mod library;
mod options;
mod shim;

use std::borrow::Cow;
use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cudarc::driver::sys::CUevent_flags;
use cudarc::driver::{CudaEvent, CudaSlice, DevicePtr, DevicePtrMut};
use half::f16;

pub use cache::{EngineKey, Lookup, default_dir as default_cache_dir, key_path, lookup, sha256_hex, store};
pub use library::{Probe, Version, candidates as library_candidates, probe};
pub use options::{DEFAULT_PRECISION, InstanceNorm, Precision, PrecisionChoice, Profile, Shape, parse_shape};

pub use shim::{BuildSettings, DataType, Engine, HEADERS, Phase, ProgressHook, Severity, TensorRt, header_version};

use super::Backend;
use super::cuda::device::Gpu;
use crate::frame::{FrameMut, FrameRef, YuvSpec};
use crate::model::Model;
use crate::{Error, Result};
use cyclegan_onnx::FloatType;
use cyclegan_runtime::Error as RuntimeError;

/// The generator's tensors, as `cyclegan-train export` names them.
pub const INPUT: &CStr = cyclegan_onnx::contract::INPUT_C;
pub const OUTPUT: &CStr = cyclegan_onnx::contract::OUTPUT_C;

/// Settings of the TensorRT backend (`[inference]` in the config, `--precision` and friends).
#[derive(Debug, Clone)]
pub struct TensorrtOptions {
    pub precision: Precision,
    /// `precision auto` with this PSNR floor (dB): `precision` and `instance_norm` are chosen on
    /// the first frame (or taken from the decision stored in the cache).
    pub auto: Option<f64>,
    /// Use (and keep up to date) this engine file instead of one in the cache folder.
    pub engine: Option<PathBuf>,
    /// Where cached engines live; default [`default_cache_dir`].
    pub cache_dir: Option<PathBuf>,
    /// Shapes to build for; default: the first frame's inference size only.
    pub profile: Option<Profile>,
    pub workspace_mib: u64,
    /// TensorRT 10 only: INT8 scales for a model without Q/DQ nodes.
    pub calibration_cache: Option<PathBuf>,
    pub instance_norm: InstanceNorm,
    /// libnvinfer to use (a file or a folder); default: the usual places.
    pub library: Option<PathBuf>,
    pub device: usize,
    /// Told a line before an engine build starts (the element posts it on the bus).
    pub notify: Option<Notify>,
}

/// Where a line for the person waiting goes (an engine build takes minutes on a Jetson, and the
/// pipeline shows nothing meanwhile).
#[derive(Clone)]
pub struct Notify(pub Arc<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for Notify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Notify")
    }
}

/// The shapes an engine must take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shapes {
    /// Exactly this profile (`build`, `--profile`).
    Profile(Profile),
    /// This frame's shape: an engine already there whose profile covers it serves (one of
    /// `build --profile`, or of another `--size`), else one for this shape alone is built.
    Frame(Shape),
}

impl TensorrtOptions {
    /// Sets the precision asked (`auto`: with the default PSNR floor).
    pub fn with_choice(self, choice: PrecisionChoice) -> Self {
        match choice.fixed() {
            Some(precision) => Self { precision, auto: None, ..self },
            None => Self { auto: Some(auto::DEFAULT_PSNR_FLOOR), ..self },
        }
    }
}

impl Default for TensorrtOptions {
    fn default() -> Self {
        Self {
            precision: DEFAULT_PRECISION,
            auto: None,
            engine: None,
            cache_dir: None,
            profile: None,
            workspace_mib: 1024,
            calibration_cache: None,
            instance_norm: InstanceNorm::Native,
            library: None,
            device: 0,
            notify: None,
        }
    }
}

/// The precision an engine of `model` gets when `asked` is asked: a Q/DQ model (from
/// cyclegan-calib) is INT8 and an FP16 export is FP16 whatever is asked; only FP32 models follow
/// the setting. The note says when the model overrode it.
pub fn effective_precision(model: &Model, asked: Precision) -> (Precision, Option<String>) {
    let (precision, why) = match (model.quantized, model.io_type) {
        (true, _) => (Precision::Int8, "it has Q/DQ nodes"),
        (false, FloatType::F16) => (Precision::Fp16, "it is an FP16 export"),
        _ => (asked, ""),
    };
    let note = (precision != asked).then(|| format!("{}: {precision} engine, not {asked}, as {why}", model.origin));
    (precision, note)
}

/// The ONNX bytes TensorRT should parse for an engine of `precision` (see
/// [`effective_precision`]): TensorRT 11 takes FP16 only from the graph's types, so an FP32 model
/// is converted, a Q/DQ one too (its unquantized layers then run in FP16, as in Model
/// Optimizer's output, rather than FP32); INT8 needs Q/DQ nodes (or, on TensorRT 10, a
/// calibration cache).
pub fn onnx_for(
    model: &Model,
    precision: Precision,
    tensorrt: Version,
    has_calibration: bool,
) -> Result<Cow<'_, [u8]>> {
    match precision {
        Precision::Int8 if !model.quantized && (tensorrt.major >= 11 || !has_calibration) => {
            Err(RuntimeError::BadModel {
                path: model.origin.clone(),
                reason: format!(
                    "precision int8 needs the Q/DQ model written by `cyclegan-calib`{}",
                    if tensorrt.major < 11 { " (or, on TensorRT 10, --calibration-cache)" } else { "" }
                ),
            }
            .into())
        }
        Precision::Fp16 | Precision::Int8 if tensorrt.major >= 11 && model.io_type == FloatType::F32 => {
            let proto = cyclegan_onnx::io::decode_model(&model.bytes)
                .map_err(|source| RuntimeError::Model { path: model.origin.clone(), source: Box::new(source) })?;
            let half = cyclegan_onnx::convert::to_fp16(&proto).map_err(|e| RuntimeError::BadModel {
                path: model.origin.clone(),
                reason: format!("FP16 conversion: {e}"),
            })?;
            Ok(Cow::Owned(cyclegan_onnx::io::encode_model(&half)))
        }
        _ => Ok(Cow::Borrowed(&model.bytes)),
    }
}

/// Refuses a precision the GPU has no arithmetic for (FP16 from compute 5.3, INT8 from 6.1), so
/// the user hears it from us rather than as a slow FP32 fallback inside TensorRT.
pub fn check_precision(gpu: &str, compute_capability: (i32, i32), precision: Precision) -> Result<()> {
    let needed = match precision {
        Precision::Fp32 => return Ok(()),
        Precision::Fp16 => (5, 3),
        Precision::Int8 => (6, 1),
    };
    if compute_capability < needed {
        let (major, minor) = compute_capability;
        return Err(Error::Tensorrt(format!(
            "{gpu} (compute {major}.{minor}) has no fast {precision}: it needs compute {}.{}; use --precision fp32",
            needed.0, needed.1
        )));
    }
    Ok(())
}

/// What an engine build did, for the CLI.
#[derive(Debug, Clone)]
pub struct Built {
    pub engine: PathBuf,
    /// None: taken from the cache; Some(why): built, and why (missing, stale ...).
    pub rebuilt: Option<String>,
    pub seconds: f64,
    /// The shapes the engine takes.
    pub profile: Profile,
}

/// Makes sure there is an engine for `model` with `options` and `shapes` on this TensorRT and
/// GPU: reuses a fresh one, else builds and stores it (with its key) atomically, telling
/// `options.notify` first and `progress` TensorRT's phases.
pub fn ensure_engine(
    tensorrt: &TensorRt,
    gpu: &Gpu,
    model: &Model,
    options: &TensorrtOptions,
    shapes: Shapes,
    timing_cache: Option<&Path>,
    progress: Option<&ProgressHook<'_>>,
) -> Result<Built> {
    let profile = match shapes {
        Shapes::Profile(profile) => profile,
        Shapes::Frame(shape) => Profile::fixed(shape),
    };
    let (precision, _) = effective_precision(model, options.precision);
    check_precision(&gpu.name, gpu.compute_capability, precision)?;
    let calibration_cache = match &options.calibration_cache {
        Some(path) => {
            std::fs::read(path).map_err(|e| Error::Invalid(format!("--calibration-cache {}: {e}", path.display())))?
        }
        None => Vec::new(),
    };
    let key = EngineKey {
        onnx_sha256: sha256_hex(&model.bytes),
        tensorrt: tensorrt.version,
        gpu: gpu.name.clone(),
        compute_capability: gpu.compute_capability,
        multiprocessors: gpu.multiprocessors,
        memory_mib: (gpu.total_memory >> 20) as u64,
        precision,
        profile,
        calibration_cache_sha256: (!calibration_cache.is_empty()).then(|| sha256_hex(&calibration_cache)),
        workspace_mib: options.workspace_mib,
        instance_norm: options.instance_norm,
    };
    if options.instance_norm == InstanceNorm::Plugin && !tensorrt.has_plugins() {
        return Err(Error::Tensorrt(format!(
            "the InstanceNorm plugin needs TensorRT's plugin library (libnvinfer_plugin.so.{}) beside {}; install \
             it or use the native InstanceNorm",
            tensorrt.version.major,
            tensorrt.path.display()
        )));
    }
    let engine = match &options.engine {
        Some(path) => path.clone(),
        None => options.cache_dir.clone().unwrap_or_else(default_cache_dir).join(key.file_name(&model_name(model))),
    };
    // Streams or services starting together build it once; the others wait, then find it fresh.
    let _building = cache::BuildLock::acquire(&engine, || {
        if let Some(Notify(notify)) = &options.notify {
            notify(&format!(
                "waiting for the TensorRT engine {} another stream or process is building",
                engine.display()
            ));
        }
    })?;
    let why = match lookup(&engine, &key) {
        Lookup::Fresh => return Ok(Built { engine, rebuilt: None, seconds: 0.0, profile }),
        Lookup::Missing => "no engine yet".to_string(),
        Lookup::Stale(why) => why,
    };
    if let Shapes::Frame(shape) = shapes {
        let places = match &options.engine {
            Some(path) => vec![path.clone()],
            None => cache::engines_in(&options.cache_dir.clone().unwrap_or_else(default_cache_dir)),
        };
        if let Some((engine, profile)) = cache::covering(&places, &key, shape) {
            return Ok(Built { engine, rebuilt: None, seconds: 0.0, profile });
        }
    }
    if let Some(Notify(notify)) = &options.notify {
        notify(&format!(
            "building a TensorRT {precision} engine for {} from {} on {} with TensorRT {} ({why}): this takes a \
             minute on a desktop GPU and several on a Jetson; it is kept in {}",
            profile.describe(),
            model.origin,
            gpu.name,
            tensorrt.version,
            engine.display()
        ));
    }
    let started = std::time::Instant::now();
    // TensorRT works in the thread's current CUDA context: make it this GPU's (the caller may be
    // a GStreamer streaming thread that never touched CUDA).
    gpu.context.bind_to_thread().map_err(cuda("binding the CUDA context"))?;
    let onnx = onnx_for(model, precision, tensorrt.version, !calibration_cache.is_empty())?;
    let timing = timing_cache.and_then(|p| std::fs::read(p).ok()).unwrap_or_default();
    let settings = BuildSettings {
        precision,
        input_name: INPUT.to_string_lossy().into_owned(),
        profile,
        workspace_mib: options.workspace_mib,
        timing_cache: timing,
        calibration_cache,
        instance_norm: options.instance_norm,
    };
    let (plan, new_timing) = tensorrt
        .build(&onnx, &settings, progress)
        .map_err(|e| Error::Tensorrt(format!("building an engine for {}: {e}", model.origin)))?;
    store(&engine, &plan, &key)?;
    if let Some(path) = timing_cache
        && !new_timing.is_empty()
    {
        cache::write_atomic(path, &new_timing)?;
    }
    Ok(Built { engine, rebuilt: Some(why), seconds: started.elapsed().as_secs_f64(), profile })
}

fn model_name(model: &Model) -> String {
    Path::new(&model.origin).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into())
}

/// Device buffers of one shape, in bytes (float32 or float16 values, as the engine's I/O is).
struct Buffers {
    shape: [usize; 4],
    input: CudaSlice<u8>,
    output: CudaSlice<u8>,
}

/// The backend: one engine at a time, for the shapes the frames need. Fields drop in order:
/// the engine and device memory go while the CUDA context (`gpu`) is still held.
pub struct TensorrtBackend {
    engine: Option<(Engine, Profile, DataType)>,
    buffers: Option<Buffers>,
    host_in: Vec<u8>,
    host_out: Vec<u8>,
    notes: Vec<String>,
    /// Made on the first frame; Err: NVRTC or the kernels failed, frames use the CPU path.
    frames: Option<std::result::Result<frames::FramePath, ()>>,
    /// Recorded around each `run`'s GPU work: its time on the device.
    events: Option<(CudaEvent, CudaEvent)>,
    device_ms: Option<f64>,
    /// The last frame's bytes copied (see `frames::CopyPlan`).
    copied_bytes: Option<u64>,
    model: Model,
    options: TensorrtOptions,
    tensorrt: Arc<TensorRt>,
    gpu: Gpu,
}

impl TensorrtBackend {
    pub fn open(model: &Model, options: &TensorrtOptions) -> Result<Self> {
        let tensorrt = Arc::new(TensorRt::open(options.library.as_deref(), Severity::Warning)?);
        let gpu = Gpu::open(options.device)?;
        let mut backend = Self {
            tensorrt,
            gpu,
            model: model.clone(),
            options: options.clone(),
            engine: None,
            buffers: None,
            host_in: Vec::new(),
            host_out: Vec::new(),
            notes: Vec::new(),
            frames: None,
            events: None,
            device_ms: None,
            copied_bytes: None,
        };
        if options.auto.is_none() {
            let (precision, note) = effective_precision(model, options.precision);
            backend.options.precision = precision;
            backend.notes.extend(note);
        }
        if let Some(profile) = options.profile {
            backend.prepare(Shapes::Profile(profile))?;
        }
        Ok(backend)
    }

    fn prepare(&mut self, shapes: Shapes) -> Result<()> {
        // Frames in flight may still be using the engine being replaced.
        self.gpu.stream.synchronize().map_err(cuda("finishing the frames in flight"))?;
        self.engine = None;
        self.buffers = None;
        if let Some(floor) = self.options.auto {
            self.decide_precision(floor, shapes)?;
        }
        let mut built = ensure_engine(&self.tensorrt, &self.gpu, &self.model, &self.options, shapes, None, None)?;
        let plan =
            std::fs::read(&built.engine).map_err(|e| Error::Invalid(format!("{}: {e}", built.engine.display())))?;
        let engine = match self.tensorrt.load(&plan, &self.gpu.context) {
            Ok(engine) => engine,
            // A key can match while the plan is damaged: rebuild once rather than fail.
            Err(e) if built.rebuilt.is_none() => {
                let _ = std::fs::remove_file(key_path(&built.engine));
                built = ensure_engine(&self.tensorrt, &self.gpu, &self.model, &self.options, shapes, None, None)?;
                built.rebuilt = Some(format!("the cached engine did not load ({e})"));
                let plan = std::fs::read(&built.engine)
                    .map_err(|e| Error::Invalid(format!("{}: {e}", built.engine.display())))?;
                self.tensorrt.load(&plan, &self.gpu.context)?
            }
            Err(e) => return Err(e),
        };
        // Building takes minutes on a Jetson: say which engine is used and why one was built.
        self.notes.push(match &built.rebuilt {
            None => format!("TensorRT engine {} (cached)", built.engine.display()),
            Some(why) => format!("TensorRT engine {} built in {:.0} s ({why})", built.engine.display(), built.seconds),
        });
        let tensors = engine.tensors();
        let find = |name: &CStr, input: bool| {
            tensors.iter().find(|t| t.name.as_c_str() == name && t.is_input == input).cloned().ok_or_else(|| {
                Error::Tensorrt(format!(
                    "the engine {} has no {} tensor {name:?}",
                    built.engine.display(),
                    if input { "input" } else { "output" }
                ))
            })
        };
        let (input, output) = (find(INPUT, true)?, find(OUTPUT, false)?);
        if input.data_type != output.data_type || !matches!(input.data_type, DataType::Float | DataType::Half) {
            return Err(Error::Tensorrt(format!(
                "the engine's `image`/`translated` are {:?}/{:?}; float32 or float16 expected",
                input.data_type, output.data_type
            )));
        }
        let actual = engine.profile(&input.name).unwrap_or(built.profile);
        self.engine = Some((engine, actual, input.data_type));
        Ok(())
    }

    /// `precision auto`: the decision stored for this model, TensorRT, GPU and size, else one
    /// made now (every candidate built and timed: minutes on a Jetson, said first).
    fn decide_precision(&mut self, floor: f64, shapes: Shapes) -> Result<()> {
        let profile = match shapes {
            Shapes::Profile(profile) => profile,
            Shapes::Frame(shape) => Profile::fixed(shape),
        };
        let cache = self.options.cache_dir.clone().unwrap_or_else(default_cache_dir);
        let path = auto::decision_path(&cache, &[&self.model], &self.tensorrt, &self.gpu.name, profile.opt);
        let decision = match auto::Decision::load(&path).filter(|d| d.floor_db == floor) {
            Some(decision) => decision,
            None => {
                let models = auto::Models { float: &self.model, int8: None };
                let candidates = auto::candidates_for(&models, self.tensorrt.has_plugins());
                if let Some(Notify(notify)) = &self.options.notify {
                    notify(&format!(
                        "precision auto: building and timing {} candidate engines for {} ({}); the choice is kept \
                         in {}",
                        candidates.len(),
                        profile.describe(),
                        candidates.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
                        path.display()
                    ));
                }
                let base = TensorrtOptions { auto: None, cache_dir: Some(cache), ..self.options.clone() };
                let inputs = auto::check_inputs(profile.opt, auto::CHECK_IMAGES);
                let trials = auto::measure(&models, &base, &candidates, profile, &inputs)?;
                let decision = auto::decide(trials, floor, profile.opt)?;
                decision.store(&path)?;
                decision
            }
        };
        self.options.precision = decision.chosen.precision;
        self.options.instance_norm = decision.chosen.instance_norm;
        self.options.auto = None;
        self.notes.push(format!(
            "precision auto chose {} ({}):\n{}",
            decision.chosen,
            path.display(),
            decision.table()
        ));
        Ok(())
    }

    fn buffers(&mut self, shape: [usize; 4], half: bool) -> Result<&mut Buffers> {
        if self.buffers.as_ref().is_none_or(|b| b.shape != shape) {
            self.buffers = None;
            let len = shape.iter().product::<usize>() * if half { 2 } else { 4 };
            let alloc = |what: &str| {
                self.gpu.stream.alloc_zeros::<u8>(len).map_err(|source| Error::Driver {
                    what: format!("allocating the {what} tensor ({len} bytes for {shape:?})"),
                    source,
                })
            };
            self.buffers = Some(Buffers { shape, input: alloc("input")?, output: alloc("output")? });
        }
        Ok(self.buffers.as_mut().expect("just set"))
    }
}

fn cuda(what: &'static str) -> impl Fn(cudarc::driver::DriverError) -> Error {
    move |source| Error::Driver { what: what.into(), source }
}

impl TensorrtBackend {
    /// An engine whose profile covers `dims`, built or loaded if the current one does not.
    fn engine_for(&mut self, dims: Shape) -> Result<bool> {
        if self.engine.as_ref().is_none_or(|(_, profile, _)| !profile.covers(dims)) {
            if let Some(profile) = self.options.profile.filter(|p| !p.covers(dims)) {
                return Err(Error::Invalid(format!(
                    "inference shape {dims:?} is outside --profile {}; widen it or set --inference-size",
                    profile.describe()
                )));
            }
            self.prepare(self.options.profile.map_or(Shapes::Frame(dims), Shapes::Profile))?;
        }
        Ok(matches!(self.engine.as_ref().map(|e| e.2), Some(DataType::Half)))
    }

    /// Runs the engine on `buffers.input` into `buffers.output`, queued on the stream.
    fn enqueue(&mut self, dims: Shape) -> Result<()> {
        let stream = self.gpu.stream.clone();
        let (engine, _, _) = self.engine.as_mut().expect("engine_for ran");
        let buffers = self.buffers.as_mut().expect("buffers ran");
        self.gpu.context.bind_to_thread().map_err(cuda("binding the CUDA context"))?;
        engine.set_input_shape(INPUT, dims)?;
        let (in_ptr, _in_sync) = buffers.input.device_ptr(&stream);
        let (out_ptr, _out_sync) = buffers.output.device_ptr_mut(&stream);
        // SAFETY: both buffers hold the whole tensor of `dims`; they live in `self` until the
        // caller synchronizes the stream.
        unsafe {
            engine.set_address(INPUT, in_ptr)?;
            engine.set_address(OUTPUT, out_ptr)?;
            engine.enqueue(stream.cu_stream() as *mut std::ffi::c_void)
        }
    }

    /// Records the start (`end` false) or the end of a frame's GPU work on the stream.
    fn mark(&mut self, end: bool) -> Result<()> {
        if self.events.is_none() {
            let event = || {
                self.gpu.context.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT)).map_err(cuda("creating a CUDA event"))
            };
            self.events = Some((event()?, event()?));
        }
        let (start, stop) = self.events.as_ref().expect("created above");
        (if end { stop } else { start }).record(&self.gpu.stream).map_err(cuda("recording a CUDA event"))
    }

    /// After the stream is synchronized: the time between the two marks.
    fn measure(&mut self) {
        self.device_ms = self.events.as_ref().and_then(|(start, stop)| start.elapsed_ms(stop).ok()).map(f64::from);
    }
}

impl Backend for TensorrtBackend {
    fn describe(&self) -> String {
        let processing = match &self.frames {
            Some(Ok(path)) => format!(", CUDA kernels {}", path.kernels.arch()),
            _ => String::new(),
        };
        format!(
            "tensorrt (TensorRT {}, {}, {}{processing})",
            self.tensorrt.version,
            if self.options.auto.is_some() { "precision auto".to_string() } else { self.options.precision.to_string() },
            self.gpu.name
        )
    }

    fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    fn device_ms(&self) -> Option<f64> {
        self.device_ms
    }

    fn copied_bytes(&self) -> Option<u64> {
        self.copied_bytes
    }

    fn submit_frame(
        &mut self,
        frame: &FrameRef<'_>,
        yuv: YuvSpec,
        size: (usize, usize),
        strength: f32,
        smoothing: cyclegan_runtime::smoothing::Step,
    ) -> Option<cyclegan_runtime::Result<()>> {
        self.frame_path()?;
        Some(self.submit_on_gpu(frame, yuv, size, strength, smoothing).map_err(Into::into))
    }

    fn finish_frame(&mut self, frame: &mut FrameMut<'_>) -> cyclegan_runtime::Result<()> {
        Ok(self.finish_on_gpu(frame)?)
    }

    fn frames_in_flight(&self) -> usize {
        2
    }

    fn discard_frames(&mut self) {
        self.discard_on_gpu()
    }

    fn run(&mut self, input: &[f32], shape: [usize; 4], output: &mut Vec<f32>) -> cyclegan_runtime::Result<()> {
        Ok(self.run_tensors(input, shape, output)?)
    }
}

impl TensorrtBackend {
    /// Runs the engine on a tensor: the host copies in and out around it.
    fn run_tensors(&mut self, input: &[f32], shape: [usize; 4], output: &mut Vec<f32>) -> Result<()> {
        let len: usize = shape.iter().product();
        if input.len() != len {
            return Err(Error::Invalid(format!("input has {} values, shape {shape:?} needs {len}", input.len())));
        }
        let dims = shape.map(|d| d as i64);
        let half = self.engine_for(dims)?;
        self.host_in.clear();
        if half {
            self.host_in.extend(input.iter().flat_map(|&v| f16::from_f32(v).to_ne_bytes()));
        } else {
            self.host_in.extend(input.iter().flat_map(|v| v.to_ne_bytes()));
        }
        let stream = self.gpu.stream.clone();
        self.buffers(shape, half)?;
        self.mark(false)?;
        let buffers = self.buffers.as_mut().expect("allocated above");
        stream.memcpy_htod(&self.host_in, &mut buffers.input).map_err(cuda("copying the input to the GPU"))?;
        self.enqueue(dims)?;
        let buffers = self.buffers.as_ref().expect("allocated above");
        self.host_out.resize(buffers.output.len(), 0);
        stream.memcpy_dtoh(&buffers.output, &mut self.host_out).map_err(cuda("copying the output back"))?;
        self.mark(true)?;
        stream.synchronize().map_err(cuda("running the engine"))?;
        self.measure();
        output.clear();
        if half {
            output.extend(self.host_out.chunks_exact(2).map(|b| f16::from_ne_bytes([b[0], b[1]]).to_f32()));
        } else {
            output.extend(self.host_out.chunks_exact(4).map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]])));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: u32) -> Version {
        Version { major, minor: 0, patch: 0 }
    }

    #[test]
    fn the_model_decides_its_precision_where_it_is_explicit() {
        let fp32 = Model::bundled().unwrap();
        assert_eq!(effective_precision(&fp32, Precision::Fp32), (Precision::Fp32, None));
        assert_eq!(effective_precision(&fp32, Precision::Int8).0, Precision::Int8);
        let half_proto =
            cyclegan_onnx::convert::to_fp16(&cyclegan_onnx::io::decode_model(&fp32.bytes).unwrap()).unwrap();
        let half = Model::from_bytes(Cow::Owned(cyclegan_onnx::io::encode_model(&half_proto)), "G16.onnx").unwrap();
        let (precision, note) = effective_precision(&half, Precision::Fp32);
        assert_eq!(precision, Precision::Fp16);
        assert!(note.unwrap().contains("G16.onnx: fp16 engine, not fp32, as it is an FP16 export"));
    }

    #[test]
    fn precisions_the_gpu_lacks_are_refused() {
        assert!(check_precision("Orin", (8, 7), Precision::Int8).is_ok());
        assert!(check_precision("Maxwell", (5, 2), Precision::Fp32).is_ok());
        let err = check_precision("Maxwell", (5, 2), Precision::Fp16).unwrap_err().to_string();
        assert!(err.contains("Maxwell (compute 5.2) has no fast fp16: it needs compute 5.3"), "{err}");
        assert!(check_precision("Jetson TX1", (5, 3), Precision::Int8).unwrap_err().to_string().contains("6.1"));
    }

    #[test]
    fn tensorrt_11_gets_fp16_from_the_graph_and_int8_only_from_qdq() {
        let fp32 = Model::bundled().unwrap();
        // TensorRT 10 takes the FP32 graph and a builder flag; 11 an FP16 graph.
        assert!(matches!(onnx_for(&fp32, Precision::Fp16, v(10), false).unwrap(), Cow::Borrowed(_)));
        let converted = onnx_for(&fp32, Precision::Fp16, v(11), false).unwrap();
        let half = Model::from_bytes(Cow::Owned(converted.into_owned()), "converted").unwrap();
        assert_eq!(half.io_type, FloatType::F16);
        for (major, calibration, expected) in [(11, true, "cyclegan-calib`"), (10, false, "--calibration-cache")] {
            let err = onnx_for(&fp32, Precision::Int8, v(major), calibration).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
        assert!(onnx_for(&fp32, Precision::Int8, v(10), true).is_ok());
        // A Q/DQ model: as it is for TensorRT 10, its float layers in FP16 for 11.
        let proto = cyclegan_onnx::io::decode_model(&fp32.bytes).unwrap();
        let plan = cyclegan_calibration::graph::plan(&proto, "bundled").unwrap();
        let q = cyclegan_calibration::qdq::Quantization {
            activation_scales: plan.activations().into_iter().map(|a| (a, 0.05)).collect(),
            ..Default::default()
        };
        let record = serde_json::json!({ "method": "test" });
        let qdq = cyclegan_calibration::qdq::quantized_model(&proto, &plan, &q, &record).unwrap();
        let int8 = Model::from_bytes(Cow::Owned(cyclegan_onnx::io::encode_model(&qdq)), "int8").unwrap();
        assert!(matches!(onnx_for(&int8, Precision::Int8, v(10), false).unwrap(), Cow::Borrowed(_)));
        let converted = onnx_for(&int8, Precision::Int8, v(11), false).unwrap();
        let half = Model::from_bytes(Cow::Owned(converted.into_owned()), "converted").unwrap();
        assert!(half.quantized);
        assert_eq!(half.io_type, FloatType::F16);
    }
}
