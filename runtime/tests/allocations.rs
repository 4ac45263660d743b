//! After its first frame, the CPU path (frame -> RGB -> tensor -> ONNX Runtime -> RGB -> frame,
//! temporal smoothing on or off) allocates nothing on the Rust heap: a counting global allocator
//! watches 50 frames a format (3 when emulated) on the thread that runs them (the test harness's
//! own threads, which report slow tests, are not the frames' business). ONNX Runtime's C++
//! allocations (its arena, reused across runs) are outside Rust's allocator.
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use cyclegan_runtime::cpu::{CpuBackend, CpuOptions};
use cyclegan_runtime::frame::{Frame, PixelFormat, YuvSpec};
use cyclegan_runtime::model::Model;
use cyclegan_runtime::preprocess::InferenceSize;
use cyclegan_runtime::translator::FrameTranslator;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            BYTES.fetch_add(new_size, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// (allocations, bytes) made by this thread while `f` runs.
fn counted(f: impl FnOnce()) -> (usize, usize) {
    ALLOCATIONS.store(0, Ordering::SeqCst);
    BYTES.store(0, Ordering::SeqCst);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    (ALLOCATIONS.load(Ordering::SeqCst), BYTES.load(Ordering::SeqCst))
}

#[test]
fn the_cpu_path_allocates_nothing_per_frame_after_the_first() {
    let model = Model::bundled().unwrap();
    let options = CpuOptions { threads: 1, ..Default::default() };
    let backend = CpuBackend::open(&model, &options).unwrap();
    // Blending (strength < 1) and resizing (the frame is not the tensor's size) both run.
    let mut translator = FrameTranslator::new(Box::new(backend), InferenceSize::Short(48), 256, 0.7);
    let yuv = YuvSpec::default();
    let (width, height) = (90, 60);
    // Emulated (scripts/cross-test.sh), a frame takes seconds: a few frames a format still show
    // whether the steady state allocates.
    let frames = if std::env::var_os("CYCLEGAN_EMULATED").is_some() { 3 } else { 50 };
    let runs = [(PixelFormat::Nv12, 0.0), (PixelFormat::I420, 0.0), (PixelFormat::Rgba, 0.0), (PixelFormat::Nv12, 0.5)];
    for (format, smoothing) in runs {
        translator.set_temporal_smoothing(smoothing).unwrap();
        let rgb: Vec<u8> = (0..width * height * 3).map(|i| (i * 7 % 251) as u8).collect();
        let source = Frame::from_rgb(format, width, height, &rgb, yuv);
        // In place, as the element translates a buffer: the frame holds the source pixels.
        let mut step = |frame: &mut Frame| {
            for (plane, original) in frame.planes.iter_mut().zip(&source.planes) {
                plane.copy_from_slice(original);
            }
            translator.submit(&frame.as_ref(), yuv).unwrap();
            translator.finish(&mut frame.as_mut()).unwrap();
        };
        let mut first = source.clone();
        let mut frame = source.clone();
        step(&mut first);
        let (allocations, bytes) = counted(|| {
            for _ in 0..frames {
                step(&mut frame);
            }
        });
        let what = format!("{} smoothed by {smoothing}", format.name());
        assert_eq!(allocations, 0, "{what}: {frames} frames made {allocations} allocations ({bytes} bytes)");
        // Still translating: every frame got the first one's result (smoothing a still frame
        // changes nothing), which is not the source.
        assert_eq!(frame, first, "{what}");
        assert_ne!(frame, source, "{what}: the frame was not translated");
    }
}
