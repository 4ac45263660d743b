//! The Rust side of csrc/tensorrt_shim.cpp: TensorRT opened and version-checked, engines built
//! from ONNX bytes and loaded for execution. Every call into TensorRT goes through here.
use std::ffi::{CStr, CString, c_char, c_void};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::driver::CudaContext;
use libloading::Library;

use super::library::{self, Probe, Version};
use super::options::{InstanceNorm, Precision, Profile};
use crate::{Error, Result};

type CreateFn = unsafe extern "C" fn(*mut c_void, i32) -> *mut c_void;
type CreateParserFn = unsafe extern "C" fn(*mut c_void, *mut c_void, i32) -> *mut c_void;
type LogFn = extern "C" fn(*mut c_void, i32, *const c_char);

#[repr(C)]
struct Factories {
    create_builder: CreateFn,
    create_runtime: CreateFn,
    create_parser: CreateParserFn,
}

#[repr(C)]
struct BuildOptions {
    precision: i32,
    input_name: *const c_char,
    min_shape: [i64; 4],
    opt_shape: [i64; 4],
    max_shape: [i64; 4],
    workspace_bytes: u64,
    timing_cache: *const c_void,
    timing_cache_size: usize,
    calibration_cache: *const c_void,
    calibration_cache_size: usize,
    instance_norm_plugin: i32,
    progress: Option<ProgressFn>,
    progress_user: *mut c_void,
}

type ProgressFn = unsafe extern "C" fn(*mut c_void, i32, *const c_char, *const c_char, i32) -> i32;

/// A step of an engine build, as TensorRT reports it (its IProgressMonitor, TensorRT 10+).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Start { name: String, parent: Option<String>, steps: i32 },
    Step { name: String, step: i32 },
    Finish { name: String },
}

/// What `build` calls with each [`Phase`] (TensorRT may call from its own threads).
pub type ProgressHook<'a> = Mutex<&'a mut (dyn FnMut(Phase) + Send)>;

/// The shim's `cg_progress_fn`: hands TensorRT's phases to the hook behind `user`.
unsafe extern "C" fn relay_progress(
    user: *mut c_void,
    event: i32,
    phase: *const c_char,
    parent: *const c_char,
    n: i32,
) -> i32 {
    let text = |p: *const c_char| {
        // SAFETY: TensorRT passes NUL-terminated names (or null for no parent) valid for the call.
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    };
    let name = text(phase).unwrap_or_default();
    let phase = match event {
        0 => Phase::Start { name, parent: text(parent), steps: n },
        1 => Phase::Step { name, step: n },
        _ => Phase::Finish { name },
    };
    // SAFETY: `user` is the hook `build` passed, alive for the whole build.
    let hook = unsafe { &*(user as *const ProgressHook<'_>) };
    // A panic must not cross into TensorRT; the build goes on without progress then.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if let Ok(mut hook) = hook.lock() {
            hook(phase)
        }
    }));
    1
}

#[repr(C)]
struct Blob {
    data: *const c_void,
    size: usize,
    owner: *mut c_void,
}

impl Blob {
    fn empty() -> Self {
        Self { data: std::ptr::null(), size: 0, owner: std::ptr::null_mut() }
    }

    /// Copies the bytes out and releases TensorRT's buffer.
    fn take(mut self) -> Vec<u8> {
        let bytes = if self.data.is_null() {
            Vec::new()
        } else {
            // SAFETY: the shim set data/size from a live IHostMemory that `owner` keeps alive.
            unsafe { std::slice::from_raw_parts(self.data.cast::<u8>(), self.size) }.to_vec()
        };
        // SAFETY: owner is null or an IHostMemory the shim handed over; freed once here.
        unsafe { cg_blob_free(&mut self) };
        bytes
    }
}

unsafe extern "C" {
    fn cg_header_version() -> i32;
    fn cg_logger_new(log: LogFn, user: *mut c_void) -> *mut c_void;
    fn cg_logger_free(logger: *mut c_void);
    fn cg_blob_free(blob: *mut Blob);
    fn cg_build(
        f: *const Factories,
        logger: *mut c_void,
        onnx: *const c_void,
        onnx_size: usize,
        options: *const BuildOptions,
        engine_out: *mut Blob,
        cache_out: *mut Blob,
        err: *mut c_char,
        err_len: usize,
    ) -> i32;
    fn cg_engine_load(
        f: *const Factories,
        logger: *mut c_void,
        data: *const c_void,
        size: usize,
        err: *mut c_char,
        err_len: usize,
    ) -> *mut c_void;
    fn cg_engine_free(engine: *mut c_void);
    fn cg_engine_io_count(engine: *const c_void) -> i32;
    fn cg_engine_io(engine: *const c_void, index: i32, is_input: *mut i32, data_type: *mut i32) -> *const c_char;
    fn cg_engine_profile_shape(engine: *const c_void, name: *const c_char, which: i32, dims: *mut i64) -> i32;
    fn cg_context_set_input_shape(engine: *mut c_void, name: *const c_char, dims: *const i64) -> i32;
    fn cg_context_set_address(engine: *mut c_void, name: *const c_char, address: *mut c_void) -> i32;
    fn cg_context_enqueue(engine: *mut c_void, stream: *mut c_void) -> i32;
}

/// The TensorRT version of the headers this program was compiled against; None where it was
/// compiled without any (the backend is then unavailable).
pub fn header_version() -> Option<Version> {
    // SAFETY: returns a constant.
    let v = unsafe { cg_header_version() };
    (v > 0).then(|| Version::from_int(v))
}

/// Where the build looked for headers, for messages.
pub const HEADERS: &str = env!("CYCLEGAN_TENSORRT_HEADERS");

/// TensorRT's log severities (ILogger::Severity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    InternalError,
    Error,
    Warning,
    Info,
    Verbose,
}

/// Receives TensorRT's log: prints what is at least as severe as `print`, and keeps the errors so
/// that a failure can quote them.
struct LogSink {
    print: Severity,
    errors: Mutex<Vec<String>>,
}

extern "C" fn log_to_sink(user: *mut c_void, severity: i32, message: *const c_char) {
    // SAFETY: `user` is the LogSink boxed in `Logger`, alive as long as the ILogger using it.
    let sink = unsafe { &*(user as *const LogSink) };
    let severity = match severity {
        0 => Severity::InternalError,
        1 => Severity::Error,
        2 => Severity::Warning,
        3 => Severity::Info,
        _ => Severity::Verbose,
    };
    // SAFETY: TensorRT passes a NUL-terminated message.
    let text = unsafe { CStr::from_ptr(message) }.to_string_lossy();
    if severity <= Severity::Error
        && let Ok(mut errors) = sink.errors.lock()
    {
        errors.push(text.to_string());
    }
    if severity <= sink.print {
        eprintln!("TensorRT {}: {text}", format!("{severity:?}").to_lowercase());
    }
}

struct Logger {
    ilogger: *mut c_void,
    sink: Box<LogSink>,
}

impl Logger {
    fn new(print: Severity) -> Result<Self> {
        let sink = Box::new(LogSink { print, errors: Mutex::new(Vec::new()) });
        // SAFETY: the sink outlives the C++ logger (freed first in Drop).
        let ilogger = unsafe { cg_logger_new(log_to_sink, &*sink as *const LogSink as *mut c_void) };
        if ilogger.is_null() {
            return Err(Error::Tensorrt("could not create a logger".into()));
        }
        Ok(Self { ilogger, sink })
    }

    /// The errors TensorRT logged since the last call, for an error message.
    fn take_errors(&self) -> String {
        let errors = self.sink.errors.lock().map(|mut e| std::mem::take(&mut *e)).unwrap_or_default();
        if errors.is_empty() { String::new() } else { format!(" TensorRT said: {}", errors.join(" | ")) }
    }
}

impl Drop for Logger {
    fn drop(&mut self) {
        // SAFETY: created by cg_logger_new, freed once.
        unsafe { cg_logger_free(self.ilogger) };
    }
}

// SAFETY: TensorRT's logger may be called from its own threads; the sink only locks a mutex.
unsafe impl Send for Logger {}
unsafe impl Sync for Logger {}

/// TensorRT, opened and checked: its libraries stay loaded as long as this lives.
pub struct TensorRt {
    pub path: PathBuf,
    pub onnx_parser: PathBuf,
    pub version: Version,
    factories: Factories,
    logger: Logger,
    _libraries: (Probe, Library),
}

/// TensorRT's plugin library (for the InstanceNorm plugin), opened and registered at most once
/// per process: its registry is global and keeps the logger it was given, so that logger stays
/// for the process's life (the library does too, as every TensorRT library: `open_resident`).
/// False where it is not installed.
fn plugins_registered(nvinfer: &Path, major: u32) -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        let name = format!("libnvinfer_plugin.so.{major}");
        let candidates = nvinfer.parent().map(|dir| dir.join(&name)).into_iter().chain([PathBuf::from(&name)]);
        let Some(library) = candidates.filter_map(|path| library::open_resident(&path).ok()).next() else {
            return false;
        };
        type InitFn = unsafe extern "C" fn(*mut c_void, *const c_char) -> bool;
        // SAFETY: TensorRT's documented `bool initLibNvInferPlugins(void* logger, char const* ns)`.
        let Ok(init) = (unsafe { library.get::<InitFn>(b"initLibNvInferPlugins\0") }).map(|f| *f) else {
            return false;
        };
        let Ok(logger) = Logger::new(Severity::Warning) else { return false };
        let logger: &'static Logger = Box::leak(Box::new(logger));
        // SAFETY: a live ILogger (leaked above) and the default (empty) namespace.
        unsafe { init(logger.ilogger, c"".as_ptr()) }
    })
}

/// The shim's `cg_precision` value.
fn precision_code(precision: Precision) -> i32 {
    match precision {
        Precision::Fp32 => 0,
        Precision::Fp16 => 1,
        Precision::Int8 => 2,
    }
}

/// Settings of one engine build.
#[derive(Debug, Clone)]
pub struct BuildSettings {
    pub precision: Precision,
    pub input_name: String,
    pub profile: Profile,
    pub workspace_mib: u64,
    pub timing_cache: Vec<u8>,
    pub calibration_cache: Vec<u8>,
    pub instance_norm: InstanceNorm,
}

impl TensorRt {
    /// Finds TensorRT (`explicit`: a library file or folder), checks its version against the
    /// headers and resolves the factory functions. `print`: the least severe log shown.
    pub fn open(explicit: Option<&Path>, print: Severity) -> Result<Self> {
        let Some(headers) = header_version() else {
            return Err(Error::BackendUnavailable(
                "tensorrt".into(),
                format!(
                    "this build has no TensorRT support: no TensorRT headers were found when it was compiled \
                     ({HEADERS}). Install TensorRT's headers (JetPack: nvidia-tensorrt-dev) or run \
                     scripts/tensorrt-headers.sh, then rebuild"
                ),
            ));
        };
        if let Some(path) = explicit.filter(|p| !p.exists()) {
            return Err(Error::TensorrtLoad { path: path.to_path_buf(), reason: "no such file or folder".into() });
        }
        let probe = library::find(&library::candidates(explicit), headers)?;
        let (onnx_parser, parser_lib) =
            library::open_onnx_parser(&library::onnx_parser_candidates(&probe.path, probe.version.major))?;
        let missing = |name: &str| Error::TensorrtLoad { path: probe.path.clone(), reason: format!("no {name}") };
        // SAFETY: the symbols are TensorRT's documented factory entry points with these C
        // signatures; the libraries stay loaded in `_libraries` as long as the pointers are used.
        let factories = unsafe {
            Factories {
                create_builder: *probe
                    .library()
                    .get::<CreateFn>(b"createInferBuilder_INTERNAL\0")
                    .map_err(|_| missing("createInferBuilder_INTERNAL"))?,
                create_runtime: *probe
                    .library()
                    .get::<CreateFn>(b"createInferRuntime_INTERNAL\0")
                    .map_err(|_| missing("createInferRuntime_INTERNAL"))?,
                create_parser: *parser_lib
                    .get::<CreateParserFn>(b"createNvOnnxParser_INTERNAL\0")
                    .map_err(|_| missing("createNvOnnxParser_INTERNAL"))?,
            }
        };
        Ok(Self {
            path: probe.path.clone(),
            onnx_parser,
            version: probe.version,
            factories,
            logger: Logger::new(print)?,
            _libraries: (probe, parser_lib),
        })
    }

    /// Whether TensorRT's plugins (the InstanceNorm plugin among them) are available; the
    /// first call registers them.
    pub fn has_plugins(&self) -> bool {
        plugins_registered(&self.path, self.version.major)
    }

    /// Builds a serialized engine from ONNX bytes; returns it and the updated timing cache.
    /// `progress` hears TensorRT's build phases.
    pub fn build(
        &self,
        onnx: &[u8],
        settings: &BuildSettings,
        progress: Option<&ProgressHook<'_>>,
    ) -> Result<(Vec<u8>, Vec<u8>)> {
        let input_name = CString::new(settings.input_name.as_str())
            .map_err(|_| Error::Invalid("the model's input name contains a NUL byte".into()))?;
        let options = BuildOptions {
            precision: precision_code(settings.precision),
            input_name: input_name.as_ptr(),
            min_shape: settings.profile.min,
            opt_shape: settings.profile.opt,
            max_shape: settings.profile.max,
            workspace_bytes: settings.workspace_mib << 20,
            timing_cache: settings.timing_cache.as_ptr().cast(),
            timing_cache_size: settings.timing_cache.len(),
            calibration_cache: settings.calibration_cache.as_ptr().cast(),
            calibration_cache_size: settings.calibration_cache.len(),
            instance_norm_plugin: i32::from(settings.instance_norm == InstanceNorm::Plugin),
            progress: progress.map(|_| relay_progress as ProgressFn),
            progress_user: progress.map_or(std::ptr::null_mut(), |p| p as *const ProgressHook<'_> as *mut c_void),
        };
        let (mut engine, mut cache) = (Blob::empty(), Blob::empty());
        let mut err = vec![0 as c_char; 8192];
        self.logger.take_errors();
        // SAFETY: every pointer is valid for the call; the blobs are owned by us afterwards.
        let status = unsafe {
            cg_build(
                &self.factories,
                self.logger.ilogger,
                onnx.as_ptr().cast(),
                onnx.len(),
                &options,
                &mut engine,
                &mut cache,
                err.as_mut_ptr(),
                err.len(),
            )
        };
        let (engine, cache) = (engine.take(), cache.take());
        if status != 0 {
            return Err(Error::Tensorrt(format!("{}.{}", c_message(&err), self.logger.take_errors())));
        }
        Ok((engine, cache))
    }

    /// Deserializes an engine and creates its execution context, in `context` (bound to this
    /// thread here, and again when the engine is dropped: its device memory belongs to it).
    pub fn load(self: &Arc<Self>, plan: &[u8], context: &Arc<CudaContext>) -> Result<Engine> {
        context.bind_to_thread().map_err(|source| Error::Driver { what: "binding the CUDA context".into(), source })?;
        let mut err = vec![0 as c_char; 2048];
        self.logger.take_errors();
        // SAFETY: valid pointers for the call; the handle is freed by Engine's Drop.
        let handle = unsafe {
            cg_engine_load(
                &self.factories,
                self.logger.ilogger,
                plan.as_ptr().cast(),
                plan.len(),
                err.as_mut_ptr(),
                err.len(),
            )
        };
        if handle.is_null() {
            return Err(Error::Tensorrt(format!("{}.{}", c_message(&err), self.logger.take_errors())));
        }
        Ok(Engine { handle, tensorrt: self.clone(), context: context.clone() })
    }
}

fn c_message(buffer: &[c_char]) -> String {
    // SAFETY: the shim wrote a NUL-terminated string (snprintf) or left the zeroed buffer.
    unsafe { CStr::from_ptr(buffer.as_ptr()) }.to_string_lossy().into_owned()
}

/// TensorRT's DataType values the generators use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    Float,
    Half,
    Other(i32),
}

#[derive(Debug, Clone)]
pub struct Tensor {
    pub name: CString,
    pub is_input: bool,
    pub data_type: DataType,
}

/// A deserialized engine with its execution context.
pub struct Engine {
    handle: *mut c_void,
    tensorrt: Arc<TensorRt>,
    context: Arc<CudaContext>,
}

// SAFETY: an engine and its context are used by one thread at a time (`&mut self`), as TensorRT allows.
unsafe impl Send for Engine {}

impl Engine {
    pub fn tensors(&self) -> Vec<Tensor> {
        // SAFETY: the handle is live; names are owned by the engine and copied here.
        let count = unsafe { cg_engine_io_count(self.handle) };
        (0..count)
            .filter_map(|i| {
                let (mut is_input, mut data_type) = (0, 0);
                let name = unsafe { cg_engine_io(self.handle, i, &mut is_input, &mut data_type) };
                (!name.is_null()).then(|| Tensor {
                    name: unsafe { CStr::from_ptr(name) }.to_owned(),
                    is_input: is_input == 1,
                    data_type: match data_type {
                        0 => DataType::Float,
                        1 => DataType::Half,
                        other => DataType::Other(other),
                    },
                })
            })
            .collect()
    }

    /// The shapes the engine's profile accepts for input `name`.
    pub fn profile(&self, name: &CStr) -> Option<Profile> {
        let mut shapes = [[0i64; 8]; 3];
        for (which, dims) in shapes.iter_mut().enumerate() {
            // SAFETY: live handle, 8-slot buffer as the shim expects.
            let rank = unsafe { cg_engine_profile_shape(self.handle, name.as_ptr(), which as i32, dims.as_mut_ptr()) };
            if rank != 4 {
                return None;
            }
        }
        let shape = |d: &[i64; 8]| [d[0], d[1], d[2], d[3]];
        Some(Profile { min: shape(&shapes[0]), opt: shape(&shapes[1]), max: shape(&shapes[2]) })
    }

    pub fn set_input_shape(&mut self, name: &CStr, shape: [i64; 4]) -> Result<()> {
        // SAFETY: live handle, 4 dims.
        match unsafe { cg_context_set_input_shape(self.handle, name.as_ptr(), shape.as_ptr()) } {
            0 => Ok(()),
            _ => Err(Error::Tensorrt(format!("the engine refused input shape {shape:?} for {name:?}"))),
        }
    }

    /// # Safety
    /// `address` must be device memory large enough for the tensor until the enqueued work ends.
    pub unsafe fn set_address(&mut self, name: &CStr, address: u64) -> Result<()> {
        match unsafe { cg_context_set_address(self.handle, name.as_ptr(), address as *mut c_void) } {
            0 => Ok(()),
            _ => Err(Error::Tensorrt(format!("the engine refused the address of {name:?}"))),
        }
    }

    /// # Safety
    /// `stream` must be a live CUDA stream of the current context; bound addresses must stay valid.
    pub unsafe fn enqueue(&mut self, stream: *mut c_void) -> Result<()> {
        match unsafe { cg_context_enqueue(self.handle, stream) } {
            0 => Ok(()),
            _ => Err(Error::Tensorrt(format!("enqueueV3 failed.{}", self.tensorrt.logger.take_errors()))),
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // The engine's device memory is freed in the thread's current context, which may be
        // none (or another GPU's) in the thread that drops it. A failure to bind leaves nothing
        // better to do than to free anyway.
        let _ = self.context.bind_to_thread();
        // SAFETY: created by cg_engine_load, freed once.
        unsafe { cg_engine_free(self.handle) };
    }
}
