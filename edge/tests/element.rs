//! appsrc -> cyclegan -> appsink: the element's frames equal the library's translation of the
//! same frames, in every format and at an odd size; GStreamer's own layouts and colour conversion
//! agree with ours; bad models and caps are errors on the bus.
mod common;

use common::scene;
use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_check as gst_check;
use gstreamer_video as gst_video;

use cyclegan_edge::backend::{self, BackendKind, BackendOptions};
use cyclegan_edge::frame::{Frame, PixelFormat, YuvMatrix, YuvRange, YuvSpec};
use cyclegan_edge::model::Model;
use cyclegan_edge::preprocess::InferenceSize;
use cyclegan_edge::smoothing::Smoother;
use cyclegan_edge::translator::FrameTranslator;

fn caps(format: PixelFormat, w: usize, h: usize, yuv: YuvSpec) -> gst::Caps {
    gst::init().unwrap();
    let mut info =
        gst_video::VideoInfo::builder(gst_video::VideoFormat::from_string(format.name()), w as u32, h as u32)
            .fps(gst::Fraction::new(10, 1));
    let colorimetry;
    if format.is_yuv() {
        colorimetry = gst_video::VideoColorimetry::new(
            match yuv.range {
                YuvRange::Full => gst_video::VideoColorRange::Range0_255,
                YuvRange::Limited => gst_video::VideoColorRange::Range16_235,
            },
            match yuv.matrix {
                YuvMatrix::Bt601 => gst_video::VideoColorMatrix::Bt601,
                YuvMatrix::Bt709 => gst_video::VideoColorMatrix::Bt709,
                YuvMatrix::Bt2020 => gst_video::VideoColorMatrix::Bt2020,
            },
            gst_video::VideoTransferFunction::Bt709,
            gst_video::VideoColorPrimaries::Bt709,
        );
        info = info.colorimetry(&colorimetry);
    }
    info.build().unwrap().to_caps().unwrap()
}

/// Pushes `frames` through `middle` (a bin description) and returns the output buffers, or the
/// first error message on the bus.
fn through(middle: &str, in_caps: &gst::Caps, frames: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, String> {
    gst::init().unwrap();
    cyclegan_edge::pipeline::init().unwrap();
    let pipeline =
        gst::parse::launch(&format!("appsrc name=src format=time ! {middle} ! appsink name=sink sync=false"))
            .unwrap()
            .downcast::<gst::Pipeline>()
            .unwrap();
    let src = pipeline.by_name("src").unwrap().downcast::<gst_app::AppSrc>().unwrap();
    let sink = pipeline.by_name("sink").unwrap().downcast::<gst_app::AppSink>().unwrap();
    src.set_caps(Some(in_caps));
    let bus = pipeline.bus().unwrap();
    let bus_error = || match bus.timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error]) {
        Some(msg) => match msg.view() {
            gst::MessageView::Error(e) => format!("{} ({:?})", e.error(), e.debug()),
            _ => unreachable!(),
        },
        None => "no error message on the bus".into(),
    };
    if pipeline.set_state(gst::State::Playing).is_err() {
        let err = bus_error();
        pipeline.set_state(gst::State::Null).unwrap();
        return Err(err);
    }
    for (i, f) in frames.iter().enumerate() {
        let mut buffer = gst::Buffer::from_slice(f.clone());
        buffer.get_mut().unwrap().set_pts(gst::ClockTime::from_mseconds(100 * i as u64));
        let _ = src.push_buffer(buffer);
    }
    let _ = src.end_of_stream();
    let mut out = Vec::new();
    let result = loop {
        if let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(20)) {
            out.push(sample.buffer().unwrap().map_readable().unwrap().to_vec());
            continue;
        }
        match bus.pop().as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Error(e)) => break Err(format!("{} ({:?})", e.error(), e.debug())),
            Some(gst::MessageView::Eos(_)) => {
                while let Some(sample) = sink.try_pull_sample(gst::ClockTime::ZERO) {
                    out.push(sample.buffer().unwrap().map_readable().unwrap().to_vec());
                }
                break Ok(out);
            }
            _ => {}
        }
    };
    pipeline.set_state(gst::State::Null).unwrap();
    result
}

#[test]
fn our_frame_layout_is_gstreamers() {
    gst::init().unwrap();
    for format in PixelFormat::ALL {
        for (w, h) in [(161, 97), (64, 48), (1, 1), (7, 3)] {
            let frame = Frame::new(format, w, h);
            let info =
                gst_video::VideoInfo::builder(gst_video::VideoFormat::from_string(format.name()), w as u32, h as u32)
                    .build()
                    .unwrap();
            let strides: Vec<usize> = info.stride().iter().map(|s| *s as usize).collect();
            assert_eq!(frame.strides, strides, "{format:?} {w}x{h}");
            assert_eq!(frame.to_bytes().len(), info.size(), "{format:?} {w}x{h}");
        }
    }
}

#[test]
fn element_output_equals_the_library_on_every_format_at_an_odd_size() {
    let (w, h) = (161, 97);
    let yuv = YuvSpec { matrix: YuvMatrix::Bt709, range: YuvRange::Limited };
    let model = Model::bundled().unwrap();
    let options = BackendOptions { threads: 1, ..Default::default() };
    // Emulated (scripts/cross-test.sh), where a frame takes seconds, the cheaper setting: the
    // buffers' layout is what differs there, not the inference size.
    let settings: &[(f32, &str)] = if std::env::var_os("CYCLEGAN_EMULATED").is_some() {
        &[(0.6, "48x32")]
    } else {
        &[(1.0, "64"), (0.6, "48x32")]
    };
    for format in PixelFormat::ALL {
        for &(strength, size) in settings {
            let inference: InferenceSize = size.parse().unwrap();
            let backend = backend::open(BackendKind::Cpu, &model, &options).unwrap().backend;
            let mut direct = FrameTranslator::new(backend, inference, model.metadata.training_resolution, strength);
            let inputs: Vec<Frame> = (0..2).map(|i| Frame::from_rgb(format, w, h, &scene(w, h, i * 11), yuv)).collect();
            let expected: Vec<Vec<u8>> = inputs
                .iter()
                .map(|f| {
                    let mut out = f.clone();
                    direct.translate(&f.as_ref(), &mut out.as_mut(), yuv).unwrap();
                    out.to_bytes()
                })
                .collect();
            let got = through(
                &format!("cyclegan backend=cpu threads=1 inference-size={size} strength={strength}"),
                &caps(format, w, h, yuv),
                &inputs.iter().map(Frame::to_bytes).collect::<Vec<_>>(),
            )
            .unwrap();
            assert_eq!(got.len(), 2, "{format:?}");
            for (g, e) in got.iter().zip(&expected) {
                assert!(g == e, "{format:?} strength {strength} {size}: element and library differ");
            }
            // And it did translate: the output is not the input.
            assert_ne!(got[0], inputs[0].to_bytes(), "{format:?}");
        }
    }
}

#[test]
fn strength_zero_passes_frames_through_untouched() {
    let (w, h) = (33, 21);
    let frame = Frame::from_rgb(PixelFormat::Nv12, w, h, &scene(w, h, 3), YuvSpec::default());
    let got = through("cyclegan strength=0", &caps(PixelFormat::Nv12, w, h, YuvSpec::default()), &[frame.to_bytes()])
        .unwrap();
    assert_eq!(got, vec![frame.to_bytes()]);
}

#[test]
fn our_yuv_conversion_agrees_with_videoconvert() {
    let (w, h) = (64, 48);
    // Smooth content: GStreamer's chroma siting and ours differ only at sharp edges.
    let rgb: Vec<u8> = (0..h).flat_map(|y| (0..w).flat_map(move |x| [(x * 4) as u8, (y * 5) as u8, 128])).collect();
    for yuv in [
        YuvSpec { matrix: YuvMatrix::Bt601, range: YuvRange::Limited },
        YuvSpec { matrix: YuvMatrix::Bt709, range: YuvRange::Limited },
        YuvSpec { matrix: YuvMatrix::Bt709, range: YuvRange::Full },
    ] {
        for format in [PixelFormat::I420, PixelFormat::Nv12] {
            let ours = Frame::from_rgb(format, w, h, &rgb, yuv);
            let theirs = through(
                &format!("videoconvert dither=none chroma-mode=none ! {}", caps(format, w, h, yuv)),
                &caps(PixelFormat::Rgb, w, h, yuv),
                &[Frame::from_rgb(PixelFormat::Rgb, w, h, &rgb, yuv).to_bytes()],
            )
            .unwrap();
            let worst = ours.to_bytes().iter().zip(&theirs[0]).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
            assert!(worst <= 2, "{format:?} {yuv:?}: RGB->YUV differs from videoconvert by {worst}");
            let back = through(
                &format!("videoconvert dither=none chroma-mode=none ! {}", caps(PixelFormat::Rgb, w, h, yuv)),
                &caps(format, w, h, yuv),
                &[ours.to_bytes()],
            )
            .unwrap();
            let mut mine = Vec::new();
            ours.as_ref().to_rgb(&mut mine, yuv);
            let theirs_rgb = Frame { planes: vec![back[0].clone()], ..Frame::new(PixelFormat::Rgb, w, h) };
            let mut theirs_packed = Vec::new();
            theirs_rgb.as_ref().to_rgb(&mut theirs_packed, yuv);
            let worst = mine.iter().zip(&theirs_packed).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
            // Decoding: no wrong matrix or range (those are off by 15 or more), and at least as
            // close to the original picture as videoconvert, whose 8-bit fixed-point limited-range
            // path is off by a mean of ~2.5 here.
            assert!(worst <= 6, "{format:?} {yuv:?}: YUV->RGB differs from videoconvert by {worst}");
            let error = |decoded: &[u8]| {
                decoded.iter().zip(&rgb).map(|(a, b)| a.abs_diff(*b) as f64).sum::<f64>() / rgb.len() as f64
            };
            let (ours_error, theirs_error) = (error(&mine), error(&theirs_packed));
            assert!(
                ours_error <= theirs_error + 0.05,
                "{format:?} {yuv:?}: ours is off the original by {ours_error}, videoconvert by {theirs_error}"
            );
        }
    }
}

#[test]
fn bad_models_and_caps_are_errors_on_the_bus() {
    let (w, h) = (32, 24);
    let rgb_caps = caps(PixelFormat::Rgb, w, h, YuvSpec::default());
    let frame = vec![Frame::from_rgb(PixelFormat::Rgb, w, h, &scene(w, h, 0), YuvSpec::default()).to_bytes()];
    let dir = tempfile::tempdir().unwrap();

    let err = through("cyclegan model=/no/such/G.onnx", &rgb_caps, &frame).unwrap_err();
    assert!(err.contains("/no/such/G.onnx"), "{err}");

    let corrupt = dir.path().join("corrupt.onnx");
    std::fs::write(&corrupt, b"\x08\x07garbage that is not a model").unwrap();
    let err = through(&format!("cyclegan model={}", corrupt.display()), &rgb_caps, &frame).unwrap_err();
    assert!(err.contains("corrupt.onnx"), "{err}");

    // A generator whose metadata says it works in [0,1].
    let mut proto = cyclegan_onnx::io::decode_model(&Model::bundled().unwrap().bytes).unwrap();
    let mut meta = cyclegan_onnx::metadata::GeneratorMetadata::read_from(&proto).unwrap();
    meta.input_range = "[0,1]".into();
    meta.write_to(&mut proto);
    let other_range = dir.path().join("range.onnx");
    cyclegan_onnx::io::write_model(&other_range, &proto).unwrap();
    let err = through(&format!("cyclegan model={}", other_range.display()), &rgb_caps, &frame).unwrap_err();
    assert!(err.contains("[0,1]") && err.contains("range.onnx"), "{err}");

    // Metadata stripped: not one of our generators.
    proto.metadata_props.clear();
    let bare = dir.path().join("bare.onnx");
    cyclegan_onnx::io::write_model(&bare, &proto).unwrap();
    let err = through(&format!("cyclegan model={}", bare.display()), &rgb_caps, &frame).unwrap_err();
    assert!(err.contains("cyclegan.") && err.contains("bare.onnx"), "{err}");

    // GRAY8 is not a format the element takes.
    let gray = gst_video::VideoInfo::builder(gst_video::VideoFormat::Gray8, w as u32, h as u32).build().unwrap();
    let err = through("cyclegan", &gray.to_caps().unwrap(), &[vec![0; gray.size()]]).unwrap_err();
    assert!(err.to_lowercase().contains("negotiat"), "{err}");

    let err = through("cyclegan backend=tensorrt", &rgb_caps, &frame).unwrap_err();
    assert!(err.contains("tensorrt"), "{err}");
}

/// The library's translation of each frame on its own.
fn one_by_one(frames: &[Frame], size: &str, yuv: YuvSpec) -> Vec<Vec<u8>> {
    let model = Model::bundled().unwrap();
    let options = BackendOptions { threads: 1, ..Default::default() };
    let backend = backend::open(BackendKind::Cpu, &model, &options).unwrap().backend;
    let mut direct = FrameTranslator::new(backend, size.parse().unwrap(), model.metadata.training_resolution, 1.0);
    frames
        .iter()
        .map(|f| {
            let mut out = f.clone();
            direct.translate(&f.as_ref(), &mut out.as_mut(), yuv).unwrap();
            out.to_bytes()
        })
        .collect()
}

#[test]
fn frames_in_flight_come_out_complete_and_in_order() {
    let (w, h) = (40, 30);
    let yuv = YuvSpec::default();
    let inputs: Vec<Frame> =
        (0..5).map(|i| Frame::from_rgb(PixelFormat::Bgrx, w, h, &scene(w, h, i * 7), yuv)).collect();
    let expected = one_by_one(&inputs, "32", yuv);
    for depth in [1, 2, 3, 8] {
        let got = through(
            &format!("cyclegan backend=cpu threads=1 inference-size=32 frames-in-flight={depth}"),
            &caps(PixelFormat::Bgrx, w, h, yuv),
            &inputs.iter().map(Frame::to_bytes).collect::<Vec<_>>(),
        )
        .unwrap();
        // EOS pushes the frames still held; each is its own frame's translation.
        assert_eq!(got.len(), inputs.len(), "frames-in-flight={depth}");
        assert!(got == expected, "frames-in-flight={depth}: frames differ from one-by-one translation");
    }
}

/// gst-check's harness around a CPU `cyclegan` holding `depth` frames.
fn harness(depth: u32, in_caps: &gst::Caps) -> gst_check::Harness {
    harness_with(depth, 0.0, in_caps)
}

/// The same, temporally smoothed by `smoothing`.
fn harness_with(depth: u32, smoothing: f64, in_caps: &gst::Caps) -> gst_check::Harness {
    gst::init().unwrap();
    cyclegan_edge::pipeline::init().unwrap();
    // Configured before the harness starts it: the properties are read in `start`.
    let element = gst::ElementFactory::make("cyclegan")
        .property_from_str("backend", "cpu")
        .property("threads", 1u32)
        .property("inference-size", "32")
        .property("frames-in-flight", depth)
        .property("temporal-smoothing", smoothing)
        .build()
        .unwrap();
    let mut h = gst_check::Harness::with_element(&element, Some("sink"), Some("src"));
    h.set_src_caps(in_caps.clone());
    h
}

fn buffer(frame: &Frame, pts_ms: u64) -> gst::Buffer {
    let mut buffer = gst::Buffer::from_slice(frame.to_bytes());
    buffer.get_mut().unwrap().set_pts(gst::ClockTime::from_mseconds(pts_ms));
    buffer
}

fn bytes(buffer: &gst::Buffer) -> Vec<u8> {
    buffer.map_readable().unwrap().to_vec()
}

#[test]
fn a_held_frame_leaves_with_the_next_or_at_eos_and_is_dropped_by_a_flush() {
    let (w, h) = (40, 30);
    let yuv = YuvSpec::default();
    let frames: Vec<Frame> =
        (0..3).map(|i| Frame::from_rgb(PixelFormat::Nv12, w, h, &scene(w, h, i * 5), yuv)).collect();
    let expected = one_by_one(&frames, "32", yuv);
    let mut t = harness(2, &caps(PixelFormat::Nv12, w, h, yuv));

    t.push(buffer(&frames[0], 0)).unwrap();
    assert_eq!(t.buffers_in_queue(), 0, "the first frame is held");
    t.push(buffer(&frames[1], 100)).unwrap();
    let first = t.pull().unwrap();
    assert_eq!((bytes(&first), first.pts()), (expected[0].clone(), Some(gst::ClockTime::ZERO)));
    assert_eq!(t.buffers_in_queue(), 0);

    // A flush (a seek) forgets frame 1: it must not come out after the new segment.
    assert!(t.push_event(gst::event::FlushStart::new()));
    assert!(t.push_event(gst::event::FlushStop::new(true)));
    assert!(t.push_event(gst::event::Segment::new(&gst::FormattedSegment::<gst::ClockTime>::new())));
    t.push(buffer(&frames[2], 200)).unwrap();
    assert_eq!(t.buffers_in_queue(), 0);
    assert!(t.push_event(gst::event::Eos::new()));
    let last = t.pull().unwrap();
    assert_eq!((bytes(&last), last.pts()), (expected[2].clone(), Some(gst::ClockTime::from_mseconds(200))));
    assert_eq!(t.buffers_in_queue(), 0);
}

#[test]
fn held_frames_leave_before_new_caps() {
    let yuv = YuvSpec::default();
    let small = Frame::from_rgb(PixelFormat::Rgb, 40, 30, &scene(40, 30, 1), yuv);
    let large = Frame::from_rgb(PixelFormat::Rgb, 56, 42, &scene(56, 42, 2), yuv);
    let mut t = harness(3, &caps(PixelFormat::Rgb, 40, 30, yuv));
    t.push(buffer(&small, 0)).unwrap();
    t.set_src_caps(caps(PixelFormat::Rgb, 56, 42, yuv));
    // The caps event pushed the 40x30 frame out ahead of itself.
    let out = t.pull().unwrap();
    assert_eq!(bytes(&out), one_by_one(std::slice::from_ref(&small), "32", yuv)[0]);
    t.push(buffer(&large, 100)).unwrap();
    assert!(t.push_event(gst::event::Eos::new()));
    assert_eq!(bytes(&t.pull().unwrap()), one_by_one(std::slice::from_ref(&large), "32", yuv)[0]);
}

#[test]
fn held_frames_add_to_the_reported_latency() {
    let (w, h) = (40, 30);
    let caps = caps(PixelFormat::Rgb, w, h, YuvSpec::default()); // 10 frames per second
    for (depth, extra_ms) in [(1, 0), (2, 100), (3, 200)] {
        let mut t = harness(depth, &caps);
        t.set_upstream_latency(gst::ClockTime::from_mseconds(5));
        t.push(buffer(&Frame::new(PixelFormat::Rgb, w, h), 0)).unwrap();
        assert_eq!(t.query_latency(), Some(gst::ClockTime::from_mseconds(5 + extra_ms)), "frames-in-flight={depth}");
    }
}

/// While the element is busy with a frame (here one at 2048x2048 on one CPU thread: seconds of
/// work, as a first-frame TensorRT engine build would be), the latency query and property reads
/// answer at once: they never wait for the streaming state.
#[test]
fn queries_and_properties_answer_while_a_frame_is_translated() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    gst::init().unwrap();
    cyclegan_edge::pipeline::init().unwrap();
    let pipeline = gst::parse::launch(
        "appsrc name=src format=time ! cyclegan name=g backend=cpu threads=1 inference-size=2048x2048 \
         ! appsink name=sink sync=false",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let src = pipeline.by_name("src").unwrap().downcast::<gst_app::AppSrc>().unwrap();
    let element = pipeline.by_name("g").unwrap();
    let (w, h) = (64, 48);
    src.set_caps(Some(&caps(PixelFormat::Rgb, w, h, YuvSpec::default())));
    let (entered, left) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    for (pad, flag) in [("sink", entered.clone()), ("src", left.clone())] {
        element.static_pad(pad).unwrap().add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            flag.store(true, Ordering::SeqCst);
            gst::PadProbeReturn::Ok
        });
    }
    pipeline.set_state(gst::State::Playing).unwrap();
    let frame = Frame::from_rgb(PixelFormat::Rgb, w, h, &scene(w, h, 3), YuvSpec::default());
    let mut buffer = gst::Buffer::from_slice(frame.to_bytes());
    buffer.get_mut().unwrap().set_pts(gst::ClockTime::ZERO);
    src.push_buffer(buffer).unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    while !entered.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the frame never reached the element");
        std::thread::sleep(Duration::from_millis(1));
    }
    let busy_since = Instant::now();
    let (mut answered_while_busy, mut slowest) = (0, Duration::ZERO);
    while !left.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the frame never left the element");
        let asked = Instant::now();
        let mut query = gst::query::Latency::new();
        assert!(element.static_pad("src").unwrap().query(&mut query), "latency query refused");
        let strength: f64 = element.property("strength");
        let size: String = element.property("inference-size");
        let took = asked.elapsed();
        assert_eq!((strength, size.as_str()), (1.0, "2048x2048"));
        if !left.load(Ordering::SeqCst) {
            answered_while_busy += 1;
            slowest = slowest.max(took);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let busy = busy_since.elapsed();
    pipeline.set_state(gst::State::Null).unwrap();
    eprintln!("{answered_while_busy} queries answered during a {busy:?} frame, the slowest in {slowest:?}");
    assert!(busy >= Duration::from_millis(300), "the frame took only {busy:?}: not slow enough to show anything");
    assert!(answered_while_busy >= 5, "{answered_while_busy} queries answered in {busy:?}");
    assert!(slowest < Duration::from_millis(50), "a query took {slowest:?} while a frame took {busy:?}");
}

/// `rgb` with sensor noise in -3..=3 levels (σ = 2), the same on every channel of a pixel.
fn noisy(rgb: &[u8], seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    rgb.chunks_exact(3)
        .flat_map(|px| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let d = (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 61) as i32 - 3;
            px.iter().map(move |&v| (v as i32 + d).clamp(0, 255) as u8).collect::<Vec<_>>()
        })
        .collect()
}

/// What the element gives for `frames` (packed RGB frames of one size) translated one by one and
/// smoothed by `smoothing`, the smoothing starting afresh at the frames in `restarts`.
fn smoothed(frames: &[Vec<u8>], (w, h): (usize, usize), smoothing: f64, restarts: &[usize]) -> Vec<Vec<u8>> {
    let yuv = YuvSpec::default();
    let inputs: Vec<Frame> = frames.iter().map(|rgb| Frame::from_rgb(PixelFormat::Rgb, w, h, rgb, yuv)).collect();
    let mut smoother = Smoother::new(smoothing).unwrap();
    one_by_one(&inputs, "32", yuv)
        .into_iter()
        .zip(frames)
        .enumerate()
        .map(|(i, (mut out, input))| {
            if restarts.contains(&i) {
                smoother.reset();
            }
            // RGB rows of 40 pixels carry no padding: the buffer is packed RGB.
            smoother.apply(input, &mut out, w, h);
            out
        })
        .collect()
}

fn with_flags(mut buffer: gst::Buffer, flags: gst::BufferFlags) -> gst::Buffer {
    buffer.get_mut().unwrap().set_flags(flags);
    buffer
}

/// A still scene with sensor noise: the generator's output flickers, and the smoothing blends
/// it, except on the first frame after a flush, a DISCONT buffer and new caps (two frames in
/// flight: each restart happens in frame order, not when the frame comes in).
#[test]
fn temporal_smoothing_restarts_after_a_flush_a_discont_buffer_and_new_caps() {
    let (w, h) = (40, 30);
    let yuv = YuvSpec::default();
    let still = scene(w, h, 4);
    let rgb: Vec<Vec<u8>> = (0..8).map(|i| noisy(&still, i)).collect();
    let frames: Vec<Frame> = rgb.iter().map(|f| Frame::from_rgb(PixelFormat::Rgb, w, h, f, yuv)).collect();
    let alone = one_by_one(&frames, "32", yuv);
    // Frame 2 is dropped by the flush before it is finished: it never joins the smoothing.
    let kept: Vec<Vec<u8>> = rgb.iter().enumerate().filter(|(i, _)| *i != 2).map(|(_, f)| f.clone()).collect();
    // Restarts at frames 0, 3 (after the flush), 5 (DISCONT); 7 comes in BGRx, below.
    let expected = smoothed(&kept, (w, h), 0.5, &[0, 2, 4]);
    let mut t = harness_with(2, 0.5, &caps(PixelFormat::Rgb, w, h, yuv));

    t.push(buffer(&frames[0], 0)).unwrap();
    t.push(buffer(&frames[1], 100)).unwrap();
    t.push(buffer(&frames[2], 200)).unwrap();
    let (out0, out1) = (bytes(&t.pull().unwrap()), bytes(&t.pull().unwrap()));
    assert_eq!(out0, alone[0], "the first frame passes unblended");
    assert!(out1 == expected[1] && out1 != alone[1], "frame 1 is not smoothed as the library smooths it");

    assert!(t.push_event(gst::event::FlushStart::new()));
    assert!(t.push_event(gst::event::FlushStop::new(true)));
    assert!(t.push_event(gst::event::Segment::new(&gst::FormattedSegment::<gst::ClockTime>::new())));
    for (i, frame) in frames.iter().enumerate().take(6).skip(3) {
        let flags = if i == 5 { gst::BufferFlags::DISCONT } else { gst::BufferFlags::empty() };
        t.push(with_flags(buffer(frame, 100 * i as u64), flags)).unwrap();
    }
    let (out3, out4) = (bytes(&t.pull().unwrap()), bytes(&t.pull().unwrap()));
    assert_eq!(out3, alone[3], "the first frame after a flush passes unblended");
    assert!(out4 == expected[3] && out4 != alone[4], "frame 4 is not smoothed");
    t.push(buffer(&frames[6], 600)).unwrap();
    let out5 = bytes(&t.pull().unwrap());
    // New caps push the held frame 6 out first.
    t.set_src_caps(caps(PixelFormat::Bgrx, w, h, yuv));
    let out6 = bytes(&t.pull().unwrap());
    assert_eq!(out5, alone[5], "the DISCONT frame passes unblended");
    assert!(out6 == expected[5] && out6 != alone[6], "frame 6 is not smoothed");

    // The same size in another format: only the caps say the stream changed.
    let bgrx = Frame::from_rgb(PixelFormat::Bgrx, w, h, &rgb[7], yuv);
    t.push(buffer(&bgrx, 700)).unwrap();
    assert!(t.push_event(gst::event::Eos::new()));
    assert_eq!(bytes(&t.pull().unwrap()), one_by_one(std::slice::from_ref(&bgrx), "32", yuv)[0]);
}

/// 0 is today's output to the bit; switched on mid-stream, the smoothing starts with the next
/// frame, unblended, and blends from the one after.
#[test]
fn temporal_smoothing_switched_on_while_playing_starts_afresh() {
    let (w, h) = (40, 30);
    let yuv = YuvSpec::default();
    let still = scene(w, h, 9);
    let rgb: Vec<Vec<u8>> = (0..5).map(|i| noisy(&still, 10 + i)).collect();
    let frames: Vec<Frame> = rgb.iter().map(|f| Frame::from_rgb(PixelFormat::Rgb, w, h, f, yuv)).collect();
    let alone = one_by_one(&frames, "32", yuv);
    let mut t = harness_with(1, 0.0, &caps(PixelFormat::Rgb, w, h, yuv));
    let step = |t: &mut gst_check::Harness, i: usize| {
        t.push(buffer(&frames[i], 100 * i as u64)).unwrap();
        bytes(&t.pull().unwrap())
    };
    assert_eq!(step(&mut t, 0), alone[0]);
    assert_eq!(step(&mut t, 1), alone[1]);
    t.element().unwrap().set_property("temporal-smoothing", 0.5);
    assert_eq!(step(&mut t, 2), alone[2], "switched on: the first frame passes unblended");
    let third = step(&mut t, 3);
    assert!(third == smoothed(&rgb[2..4], (w, h), 0.5, &[])[1] && third != alone[3], "frame 3 is not smoothed");
    t.element().unwrap().set_property("temporal-smoothing", 0.0);
    assert_eq!(step(&mut t, 4), alone[4], "switched off: each frame on its own again");
}

#[test]
fn temporal_smoothing_is_a_property_from_0_to_1_settable_while_playing() {
    gst::init().unwrap();
    cyclegan_edge::pipeline::init().unwrap();
    let element = gst::ElementFactory::make("cyclegan").build().unwrap();
    let pspec = element.find_property("temporal-smoothing").unwrap();
    let double = pspec.downcast_ref::<glib::ParamSpecDouble>().unwrap();
    // GLib refuses values outside the range (NaN included) before the element sees them.
    assert_eq!((double.minimum(), double.maximum(), double.default_value()), (0.0, 1.0, 0.0));
    assert!(pspec.flags().contains(gst::PARAM_FLAG_MUTABLE_PLAYING));
    element.set_property("temporal-smoothing", 0.75);
    assert_eq!(element.property::<f64>("temporal-smoothing"), 0.75);
}

/// What one stream of [`shared_streams`] does: frames at a size, then optionally frames at
/// another (new caps), then EOS.
struct Plan {
    frames: Vec<Frame>,
    /// After the first frames: frames of another size (new caps on this stream only).
    then: Vec<Frame>,
}

/// One pipeline of `plans.len()` branches appsrc -> cyclegan -> appsink, whose elements share
/// one model (`threads=2`, which no other test uses, keeps it apart from theirs); each branch is
/// fed by its own thread. Returns each branch's output and the shared model's batch sizes.
fn shared_streams(plans: &[Plan], window_ms: f64, concurrent: usize) -> (Vec<Vec<Vec<u8>>>, Vec<u64>) {
    gst::init().unwrap();
    cyclegan_edge::pipeline::init().unwrap();
    let yuv = YuvSpec::default();
    let branches: Vec<String> = (0..plans.len())
        .map(|i| {
            format!(
                "appsrc name=src{i} format=time ! cyclegan backend=cpu threads=2 inference-size=32 \
                 batch-window-ms={window_ms} max-batch=4 concurrent-batches={concurrent} ! appsink name=sink{i} \
                 sync=false"
            )
        })
        .collect();
    let pipeline = gst::parse::launch(&branches.join(" ")).unwrap().downcast::<gst::Pipeline>().unwrap();
    let srcs: Vec<gst_app::AppSrc> =
        (0..plans.len()).map(|i| pipeline.by_name(&format!("src{i}")).unwrap().downcast().unwrap()).collect();
    let sinks: Vec<gst_app::AppSink> =
        (0..plans.len()).map(|i| pipeline.by_name(&format!("sink{i}")).unwrap().downcast().unwrap()).collect();
    for (src, plan) in srcs.iter().zip(plans) {
        let first = &plan.frames[0];
        src.set_caps(Some(&caps(first.format, first.width, first.height, yuv)));
    }
    pipeline.set_state(gst::State::Playing).unwrap();
    let models = backend::shared::loaded();
    let model = models.iter().find(|m| m.describe().contains("2 threads")).expect("the elements' shared model");
    assert_eq!(models.iter().filter(|m| m.describe().contains("2 threads")).count(), 1, "one model loaded");
    assert_eq!(model.streams(), plans.len(), "each element uses it");
    assert_eq!(model.options().concurrent, concurrent, "batches at once");
    std::thread::scope(|scope| {
        for (src, plan) in srcs.iter().zip(plans) {
            scope.spawn(move || {
                for (i, f) in plan.frames.iter().enumerate() {
                    src.push_buffer(buffer(f, 100 * i as u64)).unwrap();
                }
                if let Some(next) = plan.then.first() {
                    src.set_caps(Some(&caps(next.format, next.width, next.height, yuv)));
                }
                for (i, f) in plan.then.iter().enumerate() {
                    src.push_buffer(buffer(f, 100 * (plan.frames.len() + i) as u64)).unwrap();
                }
                src.end_of_stream().unwrap();
            });
        }
    });
    let outputs: Vec<Vec<Vec<u8>>> = sinks
        .iter()
        .zip(plans)
        .map(|(sink, plan)| {
            (0..plan.frames.len() + plan.then.len())
                .map(|_| bytes(&sink.pull_sample().expect("a frame per frame pushed").buffer_owned().unwrap()))
                .collect()
        })
        .collect();
    let sizes = model.batch_sizes();
    pipeline.set_state(gst::State::Null).unwrap();
    (outputs, sizes)
}

#[test]
fn streams_sharing_a_model_get_each_frame_translated_as_alone_and_in_order() {
    let yuv = YuvSpec::default();
    let frames = |n: usize, (w, h): (usize, usize), seed: usize| -> Vec<Frame> {
        (0..n).map(|i| Frame::from_rgb(PixelFormat::Bgrx, w, h, &scene(w, h, seed + i * 5), yuv)).collect()
    };
    let plans = [
        // Runs on while the others end or change size.
        Plan { frames: frames(8, (40, 30), 1), then: Vec::new() },
        // Ends (EOS) early.
        Plan { frames: frames(2, (40, 30), 100), then: Vec::new() },
        // New caps mid-stream: 48x36 frames batch apart from the 40x30 ones.
        Plan { frames: frames(3, (40, 30), 200), then: frames(3, (48, 36), 300) },
    ];
    // Batched; one frame at a time; two frames at once (each on a fork of the one session).
    for (window_ms, concurrent) in [(200.0, 1), (0.0, 1), (0.0, 2)] {
        let (outputs, sizes) = shared_streams(&plans, window_ms, concurrent);
        for (s, (got, plan)) in outputs.iter().zip(&plans).enumerate() {
            let mut expected = one_by_one(&plan.frames, "32", yuv);
            expected.extend(one_by_one(&plan.then, "32", yuv));
            assert_eq!(got.len(), expected.len(), "stream {s}");
            for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
                assert!(
                    g == e,
                    "window {window_ms} ms, {concurrent} at once, stream {s}, frame {i}: not the frame's own translation"
                );
            }
        }
        let batched: u64 = sizes.iter().skip(1).sum();
        if window_ms > 0.0 {
            assert!(batched > 0, "no batch of several frames with a {window_ms} ms window: {sizes:?}");
        } else {
            assert_eq!(sizes, vec![16], "a zero window runs every frame alone");
        }
    }
}

#[test]
fn a_flush_on_one_element_leaves_the_other_sharing_its_model_untouched() {
    gst::init().unwrap();
    cyclegan_edge::pipeline::init().unwrap();
    let (w, h) = (40, 30);
    let yuv = YuvSpec::default();
    let frames: Vec<Frame> =
        (0..4).map(|i| Frame::from_rgb(PixelFormat::Rgb, w, h, &scene(w, h, i * 9), yuv)).collect();
    let expected = one_by_one(&frames, "32", yuv);
    // Two elements holding two frames each, sharing one model (`threads=3`: no other test's).
    let harness = || {
        let element = gst::ElementFactory::make("cyclegan")
            .property_from_str("backend", "cpu")
            .property("threads", 3u32)
            .property("inference-size", "32")
            .property("frames-in-flight", 2u32)
            .build()
            .unwrap();
        let mut harness = gst_check::Harness::with_element(&element, Some("sink"), Some("src"));
        harness.set_src_caps(caps(PixelFormat::Rgb, w, h, yuv));
        harness
    };
    let (mut a, mut b) = (harness(), harness());
    assert_eq!(
        backend::shared::loaded()
            .iter()
            .filter(|m| m.describe().contains("3 threads"))
            .map(|m| m.streams())
            .sum::<usize>(),
        2,
        "one model for both"
    );
    a.push(buffer(&frames[0], 0)).unwrap();
    b.push(buffer(&frames[0], 0)).unwrap();
    b.push(buffer(&frames[1], 100)).unwrap();
    // A flush on a, while b holds a frame: a forgets frame 0, b's frames come out as before.
    assert!(a.push_event(gst::event::FlushStart::new()));
    assert!(a.push_event(gst::event::FlushStop::new(true)));
    assert!(a.push_event(gst::event::Segment::new(&gst::FormattedSegment::<gst::ClockTime>::new())));
    a.push(buffer(&frames[3], 300)).unwrap();
    b.push(buffer(&frames[2], 200)).unwrap();
    assert!(a.push_event(gst::event::Eos::new()));
    assert!(b.push_event(gst::event::Eos::new()));
    let pulled = |h: &mut gst_check::Harness| {
        let mut out = Vec::new();
        while let Some(buffer) = h.try_pull() {
            out.push(bytes(&buffer));
        }
        out
    };
    assert!(pulled(&mut a) == vec![expected[3].clone()], "a: only the frame after the flush");
    assert!(pulled(&mut b) == expected[..3].to_vec(), "b: its three frames, in order");
}
