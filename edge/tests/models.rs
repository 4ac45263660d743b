//! `cyclegan-edge models import`: a generator saved by PyTorch's own `torch.save` becomes ONNX
//! whose output on a picture equals PyTorch's, without PyTorch on this side; calibration takes it
//! and the runtime runs it;
//! a file whose loading would run code is refused unrun and leaves nothing behind.
mod common;

use std::path::Path;
use std::process::{Command, Output};

use cyclegan_edge::backend::{Backend, CpuBackend, CpuOptions};
use cyclegan_edge::model::Model;
use cyclegan_onnx::{GeneratorMetadata, Precision};
use safetensors::{Dtype, SafeTensors};

fn edge(args: &[&str]) -> Output {
    let mut cmd = common::own_binary(env!("CARGO_BIN_EXE_cyclegan-edge"));
    cmd.current_dir(common::workspace()).args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The reference implementation's generator in PyTorch (train/python/cyclegan_reference.py).
fn reference(args: &[&str]) {
    let script = common::workspace().join("train/python/cyclegan_reference.py");
    let out = Command::new(common::python()).arg(script).args(args).output().unwrap();
    assert!(out.status.success(), "cyclegan_reference.py {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

#[test]
fn a_torch_save_generator_imports_and_translates_like_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    // A landscape at 64x48 as the generator takes it: NCHW in [-1, 1].
    let (w, h) = (64usize, 48usize);
    let rgb = common::scene(w, h, 3);
    let mut x = vec![0f32; 3 * w * h];
    for (i, px) in rgb.chunks_exact(3).enumerate() {
        for c in 0..3 {
            x[c * w * h + i] = px[c] as f32 / 127.5 - 1.0;
        }
    }
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view = safetensors::tensor::TensorView::new(Dtype::F32, vec![1, 3, h, w], &bytes).unwrap();
    safetensors::serialize_to_file([("x", view)], None, &d.join("x.safetensors")).unwrap();

    let (pth, expected) = (d.join("latest_net_G_A.pth"), d.join("y.safetensors"));
    let input = d.join("x.safetensors");
    reference(&["save-pth", "--out", &s(&pth), "--input", &s(&input), "--output", &s(&expected), "--ngf", "8"]);
    let out_dir = d.join("models");
    let out = edge(&["models", "import", &s(&pth), "--out", &s(&out_dir), "--domains", "summer,winter"]);
    assert!(out.status.success(), "{}", text(&out));

    let expected = std::fs::read(&expected).unwrap();
    let expected = f32s(SafeTensors::deserialize(&expected).unwrap().tensor("y").unwrap().data());
    for (precision, tolerance) in [(Precision::Fp32, 1e-4), (Precision::Fp16, 2e-2)] {
        let file = out_dir.join(format!("latest_net_G_A.{precision}.onnx"));
        let model = Model::load(Some(&file)).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let meta = GeneratorMetadata::read_from(&cyclegan_onnx::read_model(&file).unwrap()).unwrap();
        assert_eq!((meta.source_domain.as_str(), meta.target_domain.as_str()), ("summer", "winter"));
        assert_eq!((meta.precision, meta.direction.as_str(), meta.training_resolution), (precision, "a2b", 256));
        let mut backend = CpuBackend::open(&model, &CpuOptions { threads: 2, ..Default::default() }).unwrap();
        let mut ours = Vec::new();
        backend.run(&x, [1, 3, h, w], &mut ours).unwrap();
        let diff = ours.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert_eq!(ours.len(), expected.len());
        assert!(diff < tolerance, "{precision}: max abs difference to PyTorch {diff}");
    }

    // Calibration takes it, and the runtime runs it as a video filter.
    let fp32 = out_dir.join("latest_net_G_A.fp32.onnx");
    let int8 = d.join("latest_net_G_A.int8.onnx");
    let images = common::workspace().join("tests/fixtures/summer96");
    let calibration = cyclegan_calibration::calibrate::Options::new(fp32, images, int8.clone());
    cyclegan_calibration::calibrate::calibrate(&cyclegan_calibration::calibrate::Options {
        num: 8,
        size: cyclegan_edge::preprocess::InferenceSize::Short(48),
        threads: 2,
        quiet: true,
        ..calibration
    })
    .unwrap();
    assert!(Model::load(Some(&int8)).unwrap().quantized);
    let (model, video) = (out_dir.join("latest_net_G_A.fp16.onnx"), d.join("out.mp4"));
    let args = ["run", "--model", &s(&model), "--backend", "cpu", "--num-frames", "3", "--output", &s(&video)];
    let out = edge(&[&args[..], &["--width", "64", "--height", "48", "--stats", "false"]].concat());
    assert!(out.status.success() && video.is_file(), "{}", text(&out));
}

#[test]
fn bad_files_and_flags_are_refused_with_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (hostile, marker, out_dir) = (d.join("hostile"), d.join("ran"), d.join("models"));
    reference(&["save-hostile", "--out", &s(&hostile), "--marker", &s(&marker)]);
    for suffix in ["zip.pth", "legacy.pth"] {
        let file = d.join(format!("hostile.{suffix}"));
        let out = edge(&["models", "import", &s(&file), "--out", &s(&out_dir)]);
        assert!(!out.status.success() && text(&out).contains(&s(&file)), "{}", text(&out));
        assert!(!marker.exists(), "the payload of {suffix} ran");
    }
    let missing = d.join("none.pth");
    let out = edge(&["models", "import", &s(&missing), "--out", &s(&out_dir)]);
    assert!(!out.status.success() && text(&out).contains("none.pth"), "{}", text(&out));
    let out = edge(&["models", "import", &s(&missing), "--domains", "summer"]);
    assert!(!out.status.success() && text(&out).contains("--domains"), "{}", text(&out));
    assert!(!out_dir.exists(), "a refused file left {}", out_dir.display());
}
