//! `cyclegan-edge models import`: a generator saved by PyTorch's own `torch.save` or
//! `torch.onnx.export` becomes ONNX whose output on a picture equals PyTorch's, without PyTorch on
//! this side; calibration takes it and the runtime runs it; a file whose loading would run code,
//! an ONNX file with foreign operators or another function is refused and leaves nothing behind.
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

/// A landscape at 64x48 as a generator takes it (NCHW in [-1, 1]), written to `d/x.safetensors`.
fn landscape(d: &Path) -> (Vec<f32>, [usize; 4]) {
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
    (x, [1, 3, h, w])
}

/// The reference generator (ngf 8) saved by `torch.save` as `d/latest_net_G_A.pth`, with
/// `extra` flags of `save-pth`; returns PyTorch's output on [`landscape`].
fn saved_by_pytorch(d: &Path, extra: &[&str]) -> Vec<f32> {
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (pth, expected, input) = (d.join("latest_net_G_A.pth"), d.join("y.safetensors"), d.join("x.safetensors"));
    let args = ["save-pth", "--out", &s(&pth), "--input", &s(&input), "--output", &s(&expected), "--ngf", "8"];
    reference(&[&args[..], extra].concat());
    let expected = std::fs::read(&expected).unwrap();
    f32s(SafeTensors::deserialize(&expected).unwrap().tensor("y").unwrap().data())
}

fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max)
}

#[test]
fn a_torch_save_generator_imports_and_translates_like_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (x, shape) = landscape(d);
    let expected = saved_by_pytorch(d, &[]);
    let pth = d.join("latest_net_G_A.pth");
    let out_dir = d.join("models");
    let out = edge(&["models", "import", &s(&pth), "--out", &s(&out_dir), "--domains", "summer,winter"]);
    assert!(out.status.success(), "{}", text(&out));

    for (precision, tolerance) in [(Precision::Fp32, 1e-4), (Precision::Fp16, 2e-2)] {
        let file = out_dir.join(format!("latest_net_G_A.{precision}.onnx"));
        let model = Model::load(Some(&file)).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let meta = GeneratorMetadata::read_from(&cyclegan_onnx::read_model(&file).unwrap()).unwrap();
        assert_eq!((meta.source_domain.as_str(), meta.target_domain.as_str()), ("summer", "winter"));
        assert_eq!((meta.precision, meta.direction.as_str(), meta.training_resolution), (precision, "a2b", 256));
        let mut backend = CpuBackend::open(&model, &CpuOptions { threads: 2, ..Default::default() }).unwrap();
        let mut ours = Vec::new();
        backend.run(&x, shape, &mut ours).unwrap();
        let diff = max_difference(&ours, &expected);
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

#[test]
fn a_torch_onnx_export_imports_with_its_output_unchanged_and_others_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (x, shape) = landscape(d);
    let exported = d.join("horse2zebra.onnx");
    let expected = saved_by_pytorch(d, &["--onnx", &s(&exported)]);
    let original = std::fs::read(&exported).unwrap();
    let out_dir = d.join("models");
    let out = edge(&["models", "import", &s(&exported), "--out", &s(&out_dir), "--domains", "horse,zebra"]);
    assert!(out.status.success() && text(&out).contains("computes what"), "{}", text(&out));
    assert_eq!(std::fs::read(&exported).unwrap(), original, "the user's file is left as it was");

    // ONNX Runtime's output of the user's file, and of ours, is PyTorch's.
    let options = CpuOptions { threads: 2, ..Default::default() };
    let theirs = cyclegan_runtime::cpu::run_once(&original, &x, shape, &options).unwrap();
    let fp32 = out_dir.join("horse2zebra.fp32.onnx");
    let model = Model::load(Some(&fp32)).unwrap();
    assert_eq!((model.metadata.source_domain.as_str(), model.metadata.target_domain.as_str()), ("horse", "zebra"));
    let mut ours = Vec::new();
    CpuBackend::open(&model, &options).unwrap().run(&x, shape, &mut ours).unwrap();
    assert!(max_difference(&theirs, &expected) < 1e-4);
    assert!(max_difference(&ours, &theirs) < 1e-4, "{}", max_difference(&ours, &theirs));

    // Calibration takes it, and the runtime runs it.
    let int8 = d.join("horse2zebra.int8.onnx");
    let images = common::workspace().join("tests/fixtures/summer96");
    let calibration = cyclegan_calibration::calibrate::Options::new(fp32.clone(), images, int8.clone());
    cyclegan_calibration::calibrate::calibrate(&cyclegan_calibration::calibrate::Options {
        num: 4,
        size: cyclegan_edge::preprocess::InferenceSize::Short(48),
        threads: 2,
        quiet: true,
        ..calibration
    })
    .unwrap();
    let video = d.join("out.mp4");
    let args = ["run", "--model", &s(&fp32), "--backend", "cpu", "--num-frames", "2", "--output", &s(&video)];
    let out = edge(&[&args[..], &["--width", "64", "--height", "48", "--stats", "false"]].concat());
    assert!(out.status.success() && video.is_file(), "{}", text(&out));

    // A foreign operator, and a graph whose weights fit but whose padding differs: refused,
    // nothing written.
    let refused = |edit: &dyn Fn(&mut cyclegan_onnx::pb::NodeProto) -> bool, name: &str| {
        let mut proto = cyclegan_onnx::read_model(&exported).unwrap();
        assert!(proto.graph.as_mut().unwrap().node.iter_mut().any(edit), "a node to edit");
        let file = d.join(format!("{name}.onnx"));
        cyclegan_onnx::write_model(&file, &proto).unwrap();
        let out = edge(&["models", "import", &s(&file), "--out", &s(&d.join("refused"))]);
        assert!(!out.status.success(), "{}", text(&out));
        assert!(!d.join("refused").exists(), "{}", text(&out));
        text(&out)
    };
    let sigmoid = |n: &mut cyclegan_onnx::pb::NodeProto| {
        n.op_type == "Relu" && {
            n.op_type = "Sigmoid".into();
            true
        }
    };
    let err = refused(&sigmoid, "sigmoid");
    assert!(err.contains("is a Sigmoid"), "{err}");
    let zero_padding = |n: &mut cyclegan_onnx::pb::NodeProto| {
        n.op_type == "Pad" && {
            n.attribute.retain(|a| a.name != "mode");
            true
        }
    };
    let err = refused(&zero_padding, "zero-padding");
    assert!(err.contains("computes something else"), "{err}");
}
