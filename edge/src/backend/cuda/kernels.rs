//! The frame <-> tensor kernels (`kernels.cu`) on the GPU: pre-processing (unpack or YUV -> RGB,
//! resize to the inference size, normalise to planar [-1,1] f32 or f16) and post-processing
//! (denormalise, resize back, blend with the frame, smooth temporally, pack into its format),
//! each one launch (two with smoothing). They give the CPU path's bytes (`frame::color`,
//! `preprocess`, `smoothing`): see kernels.cu.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, CudaView, CudaViewMut, DeviceRepr, LaunchConfig, PushKernelArg,
    ValidAsZeroBits, sys,
};
use cudarc::nvrtc::Ptx;

use super::CudaError;
use super::nvrtc::{Nvrtc, Target};
use crate::frame::{PixelFormat, YuvMatrix, YuvRange, YuvSpec};
use cyclegan_runtime::{resize, smoothing};

/// The kernels' CUDA C++ source.
pub const SOURCE: &str = include_str!("kernels.cu");

/// The kernels' entry points in [`SOURCE`].
pub const PREPROCESS: &str = "cyclegan_preprocess";
pub const POSTPROCESS: &str = "cyclegan_postprocess";
pub const LUMA_CHANGE: &str = "cyclegan_luma_change";

/// NVRTC options the kernels need: no fused multiply-adds, which round differently from the
/// CPU's separate multiply and add and so would move u8 roundings.
pub const COMPILE_OPTIONS: [&str; 1] = ["--fmad=false"];

/// Threads per block side of both kernels' 2-D launches.
const BLOCK: u32 = 16;

/// Where a frame's planes lie in one device buffer, and how its YUV (if any) encodes colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLayout {
    pub format: PixelFormat,
    pub width: usize,
    pub height: usize,
    /// Bytes from the buffer's start to each plane (unused planes: 0).
    pub offsets: [usize; 3],
    /// Bytes per row of each plane (unused planes: 0).
    pub strides: [usize; 3],
    pub yuv: YuvSpec,
}

impl FrameLayout {
    /// GStreamer's default layout, planes back to back: what [`crate::frame::Frame::new`] makes
    /// and [`crate::frame::Frame::to_bytes`] returns (rows padded to 4 bytes, 4:2:0 luma with
    /// an even number of rows).
    pub fn packed(format: PixelFormat, width: usize, height: usize, yuv: YuvSpec) -> Self {
        let mut layout = Self { format, width, height, offsets: [0; 3], strides: [0; 3], yuv };
        let mut offset = 0;
        for (i, (row, rows)) in format.plane_sizes(width, height).enumerate() {
            let rows = if i == 0 && format.is_yuv() { rows.next_multiple_of(2) } else { rows };
            layout.offsets[i] = offset;
            layout.strides[i] = row.next_multiple_of(4);
            offset += layout.strides[i] * rows;
        }
        layout
    }

    /// The smallest buffer that holds every plane (the last row needs no padding).
    pub fn byte_len(&self) -> usize {
        self.format
            .plane_sizes(self.width, self.height)
            .enumerate()
            .map(|(i, (row, rows))| if rows == 0 { 0 } else { self.offsets[i] + self.strides[i] * (rows - 1) + row })
            .max()
            .unwrap_or(0)
    }

    /// The kernels' `Frame` argument, after checking that the planes fit in `len` bytes.
    fn args(&self, len: usize) -> Result<FrameArgs, CudaError> {
        if self.width == 0 || self.height == 0 {
            return Err(CudaError::Invalid(format!("empty {}x{} frame", self.width, self.height)));
        }
        for (i, (row, _)) in self.format.plane_sizes(self.width, self.height).enumerate() {
            if self.strides[i] < row || self.strides[i] > i32::MAX as usize {
                return Err(CudaError::Invalid(format!(
                    "{} frame {}x{}: plane {i} stride {} (rows are {row} bytes)",
                    self.format.name(),
                    self.width,
                    self.height,
                    self.strides[i]
                )));
            }
        }
        if self.byte_len() > len {
            return Err(CudaError::Invalid(format!(
                "{} frame {}x{} needs {} bytes, the buffer holds {len}",
                self.format.name(),
                self.width,
                self.height,
                self.byte_len()
            )));
        }
        let (kr, kb) = match self.yuv.matrix {
            YuvMatrix::Bt601 => (0.299, 0.114),
            YuvMatrix::Bt709 => (0.2126, 0.0722),
            YuvMatrix::Bt2020 => (0.2627, 0.0593),
        };
        // The same f32 constants as frame::color's `YuvSpec::coefficients`.
        let (y_offset, y_scale, c_scale) = match self.yuv.range {
            YuvRange::Limited => (16.0, 255.0f32 / 219.0, 255.0f32 / 224.0),
            YuvRange::Full => (0.0, 1.0, 1.0),
        };
        Ok(FrameArgs {
            offset: self.offsets.map(|o| o as u64),
            stride: self.strides.map(|s| s as i32),
            format: match self.format {
                PixelFormat::Rgb => 0,
                PixelFormat::Rgba => 1,
                PixelFormat::Bgrx => 2,
                PixelFormat::I420 => 3,
                PixelFormat::Nv12 => 4,
            },
            width: self.width as i32,
            height: self.height as i32,
            kr,
            kb,
            y_offset,
            y_scale,
            c_scale,
        })
    }
}

/// kernels.cu's `struct Frame`, field for field.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct FrameArgs {
    offset: [u64; 3],
    stride: [i32; 3],
    format: i32,
    width: i32,
    height: i32,
    kr: f32,
    kb: f32,
    y_offset: f32,
    y_scale: f32,
    c_scale: f32,
}

// SAFETY: plain old data with the C layout kernels.cu declares.
unsafe impl DeviceRepr for FrameArgs {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for u16 {}
}

/// A tensor element the kernels read and write: `f32`, or `u16` holding IEEE half bits (what
/// `half::f16::to_bits` gives; rounded to nearest even).
pub trait TensorElement: DeviceRepr + ValidAsZeroBits + Copy + sealed::Sealed {
    const IS_HALF: bool;
}

impl TensorElement for f32 {
    const IS_HALF: bool = false;
}

impl TensorElement for u16 {
    const IS_HALF: bool = true;
}

/// One axis's resize table on the device.
struct Table {
    weights: CudaSlice<i32>,
    window: i32,
    precision: i32,
}

/// Temporal smoothing's state on the device for one frame size, as `smoothing::Smoother` keeps
/// it: the previous input's luma, the previous smoothed value (RGB, unrounded) and the level
/// shown for it, and the luma change of the frame being post-processed.
pub struct SmoothingState {
    width: usize,
    height: usize,
    luma: CudaSlice<u8>,
    change: CudaSlice<u8>,
    output: CudaSlice<f32>,
    shown: CudaSlice<u8>,
}

impl SmoothingState {
    pub fn new(stream: &Arc<CudaStream>, width: usize, height: usize) -> Result<Self, CudaError> {
        let pixels = width * height;
        Ok(Self {
            width,
            height,
            luma: stream.alloc_zeros(pixels)?,
            change: stream.alloc_zeros(pixels)?,
            output: stream.alloc_zeros(3 * pixels)?,
            shown: stream.alloc_zeros(3 * pixels)?,
        })
    }

    /// (width, height) of the frames it smooths.
    pub fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }
}

/// How [`Kernels::postprocess`] smooths a frame temporally.
pub struct Smoothing<'a> {
    /// At the frame's size; rewritten with this frame.
    pub state: &'a mut SmoothingState,
    /// The still-scene weight (`smoothing::weight`); None: the frame starts the state, unblended.
    pub weight: Option<f32>,
}

/// The compiled kernels, and the resize tables of the sizes seen so far.
pub struct Kernels {
    preprocess: CudaFunction,
    postprocess: CudaFunction,
    luma_change: CudaFunction,
    arch: String,
    tables: Mutex<HashMap<(usize, usize), Arc<Table>>>,
}

impl Kernels {
    /// Compiles [`SOURCE`] for the context's GPU with the NVRTC that can (see
    /// [`Nvrtc::load_for`]) and loads it.
    pub fn for_context(ctx: &Arc<CudaContext>) -> Result<Kernels, CudaError> {
        let (nvrtc, target) = Nvrtc::load_for(ctx.compute_capability()?, super::device::driver_version()?)?;
        Self::new(ctx, &nvrtc, &target)
    }

    /// Compiles [`SOURCE`] to `target` (a CUBIN where NVRTC knows the GPU, so that the driver
    /// need not read NVRTC's PTX; else PTX the driver compiles) and loads it.
    pub fn new(ctx: &Arc<CudaContext>, nvrtc: &Nvrtc, target: &Target) -> Result<Kernels, CudaError> {
        let binary = nvrtc.compile(SOURCE, "kernels.cu", target.arch(), &COMPILE_OPTIONS)?;
        let module = ctx.load_module(Ptx::from_binary(binary))?;
        Ok(Kernels {
            preprocess: module.load_function(PREPROCESS)?,
            postprocess: module.load_function(POSTPROCESS)?,
            luma_change: module.load_function(LUMA_CHANGE)?,
            arch: match target {
                Target::Cubin(arch) => arch.clone(),
                Target::Ptx(arch) => format!("{arch} PTX"),
            },
            tables: Mutex::new(HashMap::new()),
        })
    }

    /// What the kernels were compiled for (`sm_87`, or `compute_90 PTX` on a GPU newer than NVRTC).
    pub fn arch(&self) -> &str {
        &self.arch
    }

    fn table(&self, stream: &Arc<CudaStream>, in_size: usize, out_size: usize) -> Result<Arc<Table>, CudaError> {
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(table) = tables.get(&(in_size, out_size)) {
            return Ok(table.clone());
        }
        let host = resize::Table::bilinear(in_size, out_size);
        let table = Arc::new(Table {
            weights: stream.clone_htod(&host.entries)?,
            window: host.window as i32,
            precision: host.precision as i32,
        });
        tables.insert((in_size, out_size), table.clone());
        Ok(table)
    }

    /// `frame` (laid out as `layout`) -> `tensor` `[3, H, W]` in [-1, 1] at `size` = (W, H),
    /// queued on `stream`: what `FrameRef::to_rgb` then `Preprocessor::to_tensor` compute.
    pub fn preprocess<T: TensorElement>(
        &self,
        stream: &Arc<CudaStream>,
        frame: &CudaView<'_, u8>,
        layout: &FrameLayout,
        size: (usize, usize),
        tensor: &mut CudaViewMut<'_, T>,
    ) -> Result<(), CudaError> {
        let args = layout.args(frame.len())?;
        check_tensor(tensor.len(), size)?;
        let x = self.table(stream, layout.width, size.0)?;
        let y = self.table(stream, layout.height, size.1)?;
        let (out_w, out_h, is_half) = (size.0 as i32, size.1 as i32, T::IS_HALF as i32);
        let mut launch = stream.launch_builder(&self.preprocess);
        launch.arg(frame).arg(&args);
        launch.arg(&x.weights).arg(&x.window).arg(&x.precision);
        launch.arg(&y.weights).arg(&y.window).arg(&y.precision);
        launch.arg(&out_w).arg(&out_h).arg(tensor).arg(&is_half);
        // SAFETY: the arguments match cyclegan_preprocess's parameters; the checks above keep its
        // reads and writes inside the buffers (tables: one entry per output index).
        unsafe { launch.launch(grid(size.0, size.1)) }?;
        Ok(())
    }

    /// `tensor` `[3, H, W]` at `size` = (W, H) -> `frame`, in place: resized to the frame, mixed
    /// with the frame's pixels (`strength` 1: the translation alone, 0: the frame unchanged),
    /// temporally smoothed where `smoothing` is given, and written in its format (alpha and
    /// padding bytes kept), queued on `stream`: what `Preprocessor::from_tensor`,
    /// `Smoother::apply` then `FrameMut::write_rgb` compute. For another destination, copy the
    /// frame there first.
    #[allow(clippy::too_many_arguments)] // each is one of the kernel's inputs
    pub fn postprocess<T: TensorElement>(
        &self,
        stream: &Arc<CudaStream>,
        tensor: &CudaView<'_, T>,
        size: (usize, usize),
        frame: &mut CudaViewMut<'_, u8>,
        layout: &FrameLayout,
        strength: f32,
        smoothing: Option<Smoothing<'_>>,
    ) -> Result<(), CudaError> {
        let args = layout.args(frame.len())?;
        check_tensor(tensor.len(), size)?;
        let x = self.table(stream, size.0, layout.width)?;
        let y = self.table(stream, size.1, layout.height)?;
        let (in_w, in_h, is_half) = (size.0 as i32, size.1 as i32, T::IS_HALF as i32);
        let (radius, open, closed) = (smoothing::RADIUS as i32, smoothing::GATE_OPEN, smoothing::GATE_CLOSED);
        let mut state = smoothing.map(|s| (s.weight, s.state));
        if let Some((_, state)) = &mut state {
            if state.size() != (layout.width, layout.height) {
                return Err(CudaError::Invalid(format!(
                    "smoothing state of {}x{} for a {}x{} frame",
                    state.width, state.height, layout.width, layout.height
                )));
            }
            // The frame's pixels are still the input here: their luma change, before this
            // frame's post-processing overwrites them.
            let mut launch = stream.launch_builder(&self.luma_change);
            launch.arg(&mut *frame).arg(&args).arg(&mut state.luma).arg(&mut state.change);
            // SAFETY: the arguments match cyclegan_luma_change's parameters; the frame was
            // checked against its layout, and both buffers hold width * height bytes.
            unsafe { launch.launch(grid(layout.width, layout.height)) }?;
        }
        let null = 0u64;
        let (restart, weight) = match &state {
            Some((weight, _)) => (weight.is_none() as i32, weight.unwrap_or(0.0)),
            None => (0, 0.0f32),
        };
        let mut launch = stream.launch_builder(&self.postprocess);
        launch.arg(tensor).arg(&is_half).arg(&in_w).arg(&in_h);
        launch.arg(&x.weights).arg(&x.window).arg(&x.precision);
        launch.arg(&y.weights).arg(&y.window).arg(&y.precision);
        launch.arg(frame).arg(&args).arg(&strength);
        match &mut state {
            Some((_, state)) => launch.arg(&state.change).arg(&mut state.output).arg(&mut state.shown),
            // Null pointers: no smoothing.
            None => launch.arg(&null).arg(&null).arg(&null),
        };
        launch.arg(&restart).arg(&weight).arg(&radius).arg(&open).arg(&closed).arg(&smoothing::HOLD);
        // SAFETY: as in `preprocess`; one thread per 2x2 block of the frame; the smoothing
        // buffers are the frame's size (checked above) or null.
        unsafe { launch.launch(grid(layout.width.div_ceil(2), layout.height.div_ceil(2))) }?;
        Ok(())
    }
}

fn check_tensor(len: usize, size: (usize, usize)) -> Result<(), CudaError> {
    let need = 3 * size.0 * size.1;
    if size.0 == 0 || size.1 == 0 || size.0 > i32::MAX as usize / 4 || size.1 > i32::MAX as usize / 4 {
        return Err(CudaError::Invalid(format!("tensor size {}x{}", size.0, size.1)));
    }
    if len < need {
        return Err(CudaError::Invalid(format!(
            "a 3x{}x{} tensor needs {need} values, the buffer holds {len}",
            size.1, size.0
        )));
    }
    Ok(())
}

fn grid(width: usize, height: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: ((width as u32).div_ceil(BLOCK), (height as u32).div_ceil(BLOCK), 1),
        block_dim: (BLOCK, BLOCK, 1),
        shared_mem_bytes: 0,
    }
}

/// What [`measure_throughput`] found. Rates count a frame's bytes ([`FrameLayout::byte_len`])
/// once per call, so they compare directly with copying the frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throughput {
    /// Milliseconds per call, averaged.
    pub preprocess_ms: f64,
    pub postprocess_ms: f64,
    pub memcpy_ms: f64,
    /// Frame bytes per second, in GB/s (10^9).
    pub preprocess_gbps: f64,
    pub postprocess_gbps: f64,
    /// A device-to-device copy of the frame: the memory system's bound.
    pub memcpy_gbps: f64,
}

/// Times `iterations` pre-processing calls (frame -> tensor at `size`), post-processing calls
/// (blending at strength 0.5, the slower path) and device-to-device copies of the frame, after
/// one warm-up of each, with events on `stream`.
pub fn measure_throughput<T: TensorElement>(
    kernels: &Kernels,
    stream: &Arc<CudaStream>,
    layout: &FrameLayout,
    size: (usize, usize),
    iterations: usize,
) -> Result<Throughput, CudaError> {
    let iterations = iterations.max(1);
    let bytes = layout.byte_len();
    // Mid-grey with a ramp: the YUV paths see ordinary values.
    let pattern: Vec<u8> = (0..bytes).map(|i| (64 + i % 128) as u8).collect();
    let mut frame = stream.clone_htod(&pattern)?;
    let mut copy = stream.alloc_zeros::<u8>(bytes)?;
    let mut tensor = stream.alloc_zeros::<T>(3 * size.0 * size.1)?;
    let time = |run: &mut dyn FnMut() -> Result<(), CudaError>| -> Result<f64, CudaError> {
        run()?;
        let ctx = stream.context();
        let start = ctx.new_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT))?;
        let end = ctx.new_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT))?;
        start.record(stream)?;
        for _ in 0..iterations {
            run()?;
        }
        end.record(stream)?;
        Ok(start.elapsed_ms(&end)? as f64 / iterations as f64)
    };
    let preprocess_ms =
        time(&mut || kernels.preprocess(stream, &frame.as_view(), layout, size, &mut tensor.as_view_mut()))?;
    let postprocess_ms = time(&mut || {
        kernels.postprocess(stream, &tensor.as_view(), size, &mut frame.as_view_mut(), layout, 0.5, None)
    })?;
    let memcpy_ms = time(&mut || Ok(stream.memcpy_dtod(&frame, &mut copy)?))?;
    let gbps = |ms: f64| bytes as f64 / (ms * 1e-3) / 1e9;
    Ok(Throughput {
        preprocess_ms,
        postprocess_ms,
        memcpy_ms,
        preprocess_gbps: gbps(preprocess_ms),
        postprocess_gbps: gbps(postprocess_ms),
        memcpy_gbps: gbps(memcpy_ms),
    })
}
