//! The CUDA frame kernels: NVRTC compiles them (everywhere: NVRTC needs no GPU), and on a GPU
//! (ignored tests: `cargo test -- --include-ignored` there) they give the CPU path's bytes (`frame` + `preprocess`) for every format, odd sizes, both
//! resize directions, f32 and f16 tensors, and temporal smoothing's (`smoothing`) over a sequence.
use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaStream};
use cyclegan_edge::backend::cuda::kernels::{COMPILE_OPTIONS, LUMA_CHANGE, POSTPROCESS, PREPROCESS, SOURCE};
use cyclegan_edge::backend::cuda::nvrtc::{self, Target};
use cyclegan_edge::backend::cuda::{FrameLayout, Kernels, Nvrtc, Smoothing, SmoothingState, TensorElement};
use cyclegan_edge::frame::{Frame, PixelFormat, YuvMatrix, YuvRange, YuvSpec};
use cyclegan_edge::preprocess::Preprocessor;
use cyclegan_edge::smoothing::{self, Smoother};

fn nvrtc() -> Nvrtc {
    Nvrtc::load().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
#[cfg_attr(not(target_arch = "x86_64"), ignore = "the venv's NVRTC wheel is x86_64")]
fn nvrtc_compiles_the_kernels_for_orin_and_turing() {
    let nvrtc = nvrtc();
    eprintln!("NVRTC {:?} from {}", nvrtc.version(), nvrtc.path().display());
    for (arch, target) in [("compute_87", ".target sm_87"), ("compute_75", ".target sm_75")] {
        let ptx = nvrtc.compile(SOURCE, "kernels.cu", arch, &COMPILE_OPTIONS).unwrap_or_else(|e| panic!("{e}"));
        let ptx = String::from_utf8_lossy(&ptx);
        assert!(ptx.contains(target), "{arch}: {target} missing");
        for entry in [PREPROCESS, POSTPROCESS, LUMA_CHANGE] {
            assert!(ptx.contains(&format!(".entry {entry}(")), "{arch}: no entry point {entry}");
        }
    }
    // What `Kernels::new` asks for on a Jetson Orin: a CUBIN, an ELF file.
    let cubin = nvrtc.compile(SOURCE, "kernels.cu", "sm_87", &COMPILE_OPTIONS).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(&cubin[..4], b"\x7fELF");
}

/// NVRTC 13 (the project's wheel) dropped the architectures before Turing: a Xavier (sm_72)
/// needs another NVRTC, and the choice says so from NVRTC's own list.
#[test]
#[cfg_attr(not(target_arch = "x86_64"), ignore = "the venv's NVRTC wheel is x86_64")]
fn nvrtc_lists_the_architectures_it_compiles_for() {
    let abilities = nvrtc().abilities();
    let archs = abilities.archs.clone().expect("NVRTC 11.2+ lists its architectures");
    assert!(archs.contains(&87) && archs.contains(&75), "{archs:?}");
    let driver = abilities.version;
    let chosen = nvrtc::choose(std::slice::from_ref(&abilities), 87, driver);
    assert_eq!(chosen, Ok((0, Target::Cubin("sm_87".into()))));
    assert!(!archs.contains(&72), "NVRTC {:?} still compiles for sm_72", abilities.version);
    let why = nvrtc::choose(&[abilities], 72, driver).unwrap_err();
    assert!(why[0].contains("not sm_72"), "{why:?}");
}

#[test]
#[cfg_attr(not(target_arch = "x86_64"), ignore = "the venv's NVRTC wheel is x86_64")]
fn nvrtc_errors_carry_the_compiler_log() {
    let nvrtc = nvrtc();
    let source = "extern \"C\" __global__ void broken(float* x) { x[0] = 1.0f }\n";
    let error = nvrtc.compile(source, "broken.cu", "compute_87", &[]).unwrap_err().to_string();
    // NVRTC's log names the file and line: `broken.cu(1): error: expected a ";"`.
    assert!(error.contains("broken.cu(1): error"), "{error}");
    assert!(error.contains("compute_87"), "{error}");
    let error = nvrtc.compile(SOURCE, "kernels.cu", "ampere", &[]).unwrap_err().to_string();
    assert!(error.contains("compute_XY"), "{error}");
}

#[test]
fn packed_layouts_match_the_cpu_frames_bytes() {
    for format in PixelFormat::ALL {
        for (w, h) in [(161, 97), (63, 37), (2, 2)] {
            let frame = Frame::new(format, w, h);
            let layout = FrameLayout::packed(format, w, h, YuvSpec::default());
            let mut offset = 0;
            for (i, plane) in frame.planes.iter().enumerate() {
                assert_eq!((layout.offsets[i], layout.strides[i]), (offset, frame.strides[i]), "{format:?} {w}x{h}");
                offset += plane.len();
            }
            assert!(layout.byte_len() <= offset && layout.byte_len() > offset - frame.strides[0], "{format:?}");
        }
    }
}

/// xorshift64*: reproducible noise without a dependency.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn byte(&mut self) -> u8 {
        (self.next() >> 56) as u8
    }

    /// Uniform in [lo, hi).
    fn float(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next() >> 40) as f32 / (1u64 << 24) as f32)
    }
}

/// (frame size, inference size): shrinking, shrinking more, enlarging, and the same size.
const SIZES: [((usize, usize), (usize, usize)); 4] =
    [((161, 97), (128, 96)), ((97, 61), (64, 48)), ((63, 37), (64, 48)), ((64, 48), (64, 48))];

/// Bytes before the frame in its device buffer: plane offsets are honoured, not assumed 0.
const LEAD: usize = 12;

fn specs(format: PixelFormat) -> Vec<YuvSpec> {
    if !format.is_yuv() {
        return vec![YuvSpec::default()];
    }
    vec![
        YuvSpec { matrix: YuvMatrix::Bt601, range: YuvRange::Limited },
        YuvSpec { matrix: YuvMatrix::Bt709, range: YuvRange::Full },
        YuvSpec { matrix: YuvMatrix::Bt2020, range: YuvRange::Limited },
    ]
}

/// A context, its stream and the compiled kernels. The tests that call it are ignored by default
/// (`cargo test -- --include-ignored` runs them on a GPU machine), and fail here without one.
fn gpu() -> (Arc<CudaStream>, Kernels) {
    // SAFETY: only tries to open libcuda.
    assert!(unsafe { cudarc::driver::sys::is_culib_present() }, "needs a GPU: libcuda not found");
    let n = CudaContext::device_count().unwrap_or_else(|e| panic!("needs a GPU: {e}"));
    assert!(n > 0, "needs a GPU: the driver reports none");
    let ctx = CudaContext::new(0).expect("CUDA device 0");
    let kernels = Kernels::for_context(&ctx).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("kernels compiled for {}", kernels.arch());
    (ctx.default_stream(), kernels)
}

/// A frame of `format` with random bytes everywhere (padding included), its layout at LEAD in
/// a device-sized buffer, and that buffer's bytes.
fn random_frame(
    noise: &mut Noise,
    format: PixelFormat,
    (w, h): (usize, usize),
    yuv: YuvSpec,
) -> (Frame, FrameLayout, Vec<u8>) {
    let mut frame = Frame::new(format, w, h);
    frame.planes.iter_mut().flatten().for_each(|b| *b = noise.byte());
    let mut layout = FrameLayout::packed(format, w, h, yuv);
    layout.offsets = layout.offsets.map(|o| o + LEAD);
    let mut bytes: Vec<u8> = (0..LEAD).map(|_| noise.byte()).collect();
    bytes.extend(frame.to_bytes());
    (frame, layout, bytes)
}

fn check_preprocess<T: TensorElement>(
    stream: &Arc<CudaStream>,
    kernels: &Kernels,
    to_f32: fn(T) -> f32,
    tolerance: f32,
) {
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let mut pre = Preprocessor::default();
    let (mut rgb, mut expected) = (Vec::new(), Vec::new());
    for format in PixelFormat::ALL {
        for yuv in specs(format) {
            for (frame_size, size) in SIZES {
                let (frame, layout, bytes) = random_frame(&mut noise, format, frame_size, yuv);
                frame.as_ref().to_rgb(&mut rgb, yuv);
                pre.to_tensor(&rgb, frame_size, size, &mut expected);

                let device_frame = stream.clone_htod(&bytes).unwrap();
                let mut tensor = stream.alloc_zeros::<T>(3 * size.0 * size.1).unwrap();
                kernels
                    .preprocess(stream, &device_frame.as_view(), &layout, size, &mut tensor.as_view_mut())
                    .unwrap_or_else(|e| panic!("{e}"));
                let got = stream.clone_dtoh(&tensor).unwrap();
                let worst = got.iter().zip(&expected).map(|(g, e)| (to_f32(*g) - e).abs()).fold(0.0, f32::max);
                let what = format!("{format:?} {yuv:?} {frame_size:?} -> {size:?}");
                assert!(worst <= tolerance, "{what}: off by {worst} (> {tolerance})");
                if worst > 0.0 {
                    eprintln!("{what}: off by {worst}");
                }
            }
        }
    }
}

#[test]
#[ignore = "needs a GPU"]
fn preprocess_matches_the_cpu_path() {
    let (stream, kernels) = gpu();
    // One u8 step of the resized image is 1/127.5 in the tensor; the tolerance is half of it.
    check_preprocess::<f32>(&stream, &kernels, |v| v, 1.0 / 255.0 + 1e-6);
    // f16 adds its own rounding: at most half an ulp at 1.0, 2^-11.
    check_preprocess::<u16>(&stream, &kernels, |v| half::f16::from_bits(v).to_f32(), 1.0 / 255.0 + 1.0 / 2048.0);
}

fn check_postprocess<T: TensorElement>(
    stream: &Arc<CudaStream>,
    kernels: &Kernels,
    from_f32: fn(f32) -> T,
    to_f32: fn(T) -> f32,
) {
    let mut noise = Noise(0x0123_4567_89ab_cdef);
    let mut pre = Preprocessor::default();
    let (mut rgb, mut translated) = (Vec::new(), Vec::new());
    for format in PixelFormat::ALL {
        for yuv in specs(format) {
            for (frame_size, size) in SIZES {
                for strength in [1.0, 0.6, 0.0] {
                    let (frame, layout, bytes) = random_frame(&mut noise, format, frame_size, yuv);
                    // Slightly past [-1, 1], as a generator's output may be: the clamp is tested too.
                    let tensor: Vec<T> = (0..3 * size.0 * size.1).map(|_| from_f32(noise.float(-1.1, 1.1))).collect();
                    let values: Vec<f32> = tensor.iter().map(|v| to_f32(*v)).collect();
                    frame.as_ref().to_rgb(&mut rgb, yuv);
                    pre.from_tensor(&values, size, frame_size, &rgb, strength, &mut translated);
                    let mut expected = frame.clone();
                    expected.as_mut().write_rgb(&translated, yuv);
                    let mut expected_bytes = bytes[..LEAD].to_vec();
                    expected_bytes.extend(expected.to_bytes());

                    let mut device_frame = stream.clone_htod(&bytes).unwrap();
                    let device_tensor = stream.clone_htod(&tensor).unwrap();
                    kernels
                        .postprocess(
                            stream,
                            &device_tensor.as_view(),
                            size,
                            &mut device_frame.as_view_mut(),
                            &layout,
                            strength,
                            None,
                        )
                        .unwrap_or_else(|e| panic!("{e}"));
                    let got = stream.clone_dtoh(&device_frame).unwrap();
                    let what = format!("{format:?} {yuv:?} {size:?} -> {frame_size:?} at {strength}");
                    assert_eq!(got.len(), expected_bytes.len());
                    let worst = got.iter().zip(&expected_bytes).map(|(g, e)| g.abs_diff(*e)).max().unwrap();
                    assert!(worst <= 1, "{what}: off by {worst}");
                    if worst > 0 {
                        let n = got.iter().zip(&expected_bytes).filter(|(g, e)| g != e).count();
                        eprintln!("{what}: {n} bytes off by 1");
                    }
                }
            }
        }
    }
}

#[test]
#[ignore = "needs a GPU"]
fn postprocess_matches_the_cpu_path() {
    let (stream, kernels) = gpu();
    check_postprocess::<f32>(&stream, &kernels, |v| v, |v| v);
    check_postprocess::<u16>(
        &stream,
        &kernels,
        |v| half::f16::from_f32(v).to_bits(),
        |v| half::f16::from_bits(v).to_f32(),
    );
}

#[test]
#[ignore = "needs a GPU"]
fn kernels_reject_buffers_too_small() {
    let (stream, kernels) = gpu();
    let layout = FrameLayout::packed(PixelFormat::Nv12, 64, 48, YuvSpec::default());
    let frame = stream.alloc_zeros::<u8>(layout.byte_len() - 1).unwrap();
    let mut tensor = stream.alloc_zeros::<f32>(3 * 32 * 24).unwrap();
    let error =
        kernels.preprocess(&stream, &frame.as_view(), &layout, (32, 24), &mut tensor.as_view_mut()).unwrap_err();
    assert!(error.to_string().contains("needs"), "{error}");
    let frame = stream.alloc_zeros::<u8>(layout.byte_len()).unwrap();
    let error =
        kernels.preprocess(&stream, &frame.as_view(), &layout, (32, 25), &mut tensor.as_view_mut()).unwrap_err();
    assert!(error.to_string().contains("needs"), "{error}");
}

/// Temporal smoothing on the GPU equals `Smoother` on the CPU path over a sequence: a still
/// random scene with noise (gate open) whose translation moves by about a level a frame (the
/// hold), a band brightening by 10 levels a frame (the gate's ramp), a moving square (gate
/// closed), a restart at frame 3.
#[test]
#[ignore = "needs a GPU"]
fn smoothing_matches_the_cpu_path() {
    let (stream, kernels) = gpu();
    let mut noise = Noise(0x5eed_0f5e_ed0f_5eed);
    let mut pre = Preprocessor::default();
    let (mut rgb, mut translated) = (Vec::new(), Vec::new());
    let s = 0.6;
    for format in PixelFormat::ALL {
        let yuv = specs(format)[0];
        for (frame_size, size) in [SIZES[0], SIZES[2]] {
            let (w, h) = frame_size;
            let base: Vec<u8> = (0..w * h * 3).map(|_| noise.byte()).collect();
            let mut smoother = Smoother::new(s).unwrap();
            let mut state = SmoothingState::new(&stream, w, h).unwrap();
            let still: Vec<f32> = (0..3 * size.0 * size.1).map(|_| noise.float(-1.0, 1.0)).collect();
            for t in 0..6 {
                let scene: Vec<u8> = (0..w * h)
                    .flat_map(|i| {
                        let (x, y) = (i % w, i / w);
                        let d = (noise.next() % 5) as i32 - 2;
                        let lift = if x > 2 * w / 3 { 10 * t as i32 } else { 0 };
                        let square = (4 + 5 * t..16 + 5 * t).contains(&x) && (3..15).contains(&y);
                        std::array::from_fn::<u8, 3, _>(|c| {
                            if square { 20 } else { (base[3 * i + c] as i32 / 2 + 60 + lift + d).clamp(0, 255) as u8 }
                        })
                    })
                    .collect();
                let frame = Frame::from_rgb(format, w, h, &scene, yuv);
                let mut layout = FrameLayout::packed(format, w, h, yuv);
                layout.offsets = layout.offsets.map(|o| o + LEAD);
                let mut bytes = vec![7u8; LEAD];
                bytes.extend(frame.to_bytes());
                // ±0.008 is ±1 level of 255.
                let tensor: Vec<f32> =
                    still.iter().map(|&v| (v + noise.float(-0.008, 0.008)).clamp(-1.0, 1.0)).collect();

                let restart = t == 0 || t == 3;
                frame.as_ref().to_rgb(&mut rgb, yuv);
                pre.from_tensor(&tensor, size, frame_size, &rgb, 0.8, &mut translated);
                if restart {
                    smoother.reset();
                }
                smoother.apply(&rgb, &mut translated, w, h);
                let mut expected = frame.clone();
                expected.as_mut().write_rgb(&translated, yuv);
                let mut expected_bytes = vec![7u8; LEAD];
                expected_bytes.extend(expected.to_bytes());

                let mut device_frame = stream.clone_htod(&bytes).unwrap();
                let device_tensor = stream.clone_htod(&tensor).unwrap();
                let weight = (!restart).then(|| smoothing::weight(s));
                kernels
                    .postprocess(
                        &stream,
                        &device_tensor.as_view(),
                        size,
                        &mut device_frame.as_view_mut(),
                        &layout,
                        0.8,
                        Some(Smoothing { state: &mut state, weight }),
                    )
                    .unwrap_or_else(|e| panic!("{e}"));
                let got = stream.clone_dtoh(&device_frame).unwrap();
                let worst = got.iter().zip(&expected_bytes).map(|(g, e)| g.abs_diff(*e)).max().unwrap();
                assert!(worst <= 1, "{format:?} {size:?} -> {frame_size:?}, frame {t}: off by {worst}");
            }
        }
    }
    // A state of another size is refused.
    let layout = FrameLayout::packed(PixelFormat::Rgb, 8, 8, YuvSpec::default());
    let mut frame = stream.alloc_zeros::<u8>(layout.byte_len()).unwrap();
    let tensor = stream.alloc_zeros::<f32>(3 * 8 * 8).unwrap();
    let mut state = SmoothingState::new(&stream, 9, 8).unwrap();
    let error = kernels
        .postprocess(
            &stream,
            &tensor.as_view(),
            (8, 8),
            &mut frame.as_view_mut(),
            &layout,
            1.0,
            Some(Smoothing { state: &mut state, weight: None }),
        )
        .unwrap_err();
    assert!(error.to_string().contains("9x8"), "{error}");
}
