//! `.pth` files written by PyTorch's own `torch.save` import, and the imported generator then
//! translates exactly as PyTorch does, in tch and through its ONNX export in ONNX Runtime (the
//! layout round trip over ngf, blocks, affine norms, convolutions without bias, renamed blocks,
//! and the format of PyTorch 0.3 in which the reference project's generators were published); files whose loading would run code are refused unrun.
mod common;

use std::path::Path;

use cyclegan_model::Direction;
use cyclegan_model::import::import_pth;
use cyclegan_onnx::{FloatType, Precision};
use cyclegan_train::export::{ExportOptions, export_generator};
use cyclegan_train::imageio::rgb_to_tensor;
use cyclegan_train::translate::Translator;
use tch::Tensor;

#[test]
fn torch_save_variants_import_and_translate_like_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = common::synth(d, 1, 40);
    let img = image::open(data.join("testA/00000.png")).unwrap().to_rgb8();
    let img = image::imageops::crop_imm(&img, 0, 0, 40, 32).to_image();
    let x = rgb_to_tensor(&img);
    let input = d.join("x.safetensors");
    Tensor::write_safetensors(&[("x", &x)], &input).unwrap();

    let variants: [(&str, &[&str]); 5] = [
        ("reference", &["--ngf", "8", "--n-blocks", "9"]),
        // As the reference project's published generators were saved: `_rebuild_tensor` and the
        // instance norms' running statistics.
        ("pytorch-0.3", &["--ngf", "8", "--n-blocks", "9", "--pytorch03"]),
        ("legacy", &["--ngf", "8", "--n-blocks", "6", "--legacy"]),
        ("affine-nobias-renamed", &["--ngf", "12", "--n-blocks", "6", "--affine", "--no-bias", "--rename-blocks"]),
        ("legacy-affine", &["--ngf", "4", "--n-blocks", "9", "--affine", "--legacy"]),
    ];
    for (name, flags) in variants {
        let pth = d.join(format!("{name}.pth"));
        let expected = d.join(format!("{name}.out.safetensors"));
        let mut args = vec!["save-pth", "--out", pth.to_str().unwrap(), "--input", input.to_str().unwrap()];
        args.extend(["--output", expected.to_str().unwrap()]);
        args.extend(flags);
        common::run_python(&args);

        let ckpt = d.join(format!("imported-{name}"));
        let (_, report) = import_pth(&pth, &ckpt, Direction::B2a, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(report.affine_norm, flags.contains(&"--affine"), "{name}");
        assert_eq!(!report.zero_biases.is_empty(), flags.contains(&"--no-bias"), "{name}");
        let stats = if flags.contains(&"--pytorch03") { 2 * 9 + 5 } else { 0 };
        assert_eq!(report.dropped_running_stats, stats, "{name}");
        let t = Translator::load(&ckpt, Direction::B2a, tch::Device::Cpu).unwrap();
        let ours = t.forward(&x);
        let theirs = &Tensor::read_safetensors(&expected).unwrap()[0].1;
        let diff = (&ours - theirs).abs().max().double_value(&[]);
        assert!(diff < 1e-4, "{name}: max abs difference {diff}");
        let opts = ExportOptions { direction: Direction::B2a, precision: Precision::Fp32, io_type: FloatType::F32 };
        // The same layout through ONNX: ONNX Runtime on our export agrees with PyTorch.
        let onnx = d.join(format!("{name}.onnx"));
        let model = export_generator(&ckpt, &opts).unwrap_or_else(|e| panic!("{name}: export: {e}"));
        cyclegan_onnx::write_model(&onnx, &model).unwrap();
        let ort = common::onnx_runtime(&onnx, &[("x".to_string(), x.shallow_clone())], d);
        let diff = (&ort["x"] - theirs).abs().max().double_value(&[]);
        assert!(diff < 1e-4, "{name}: ONNX Runtime vs PyTorch: max abs difference {diff}");
    }

    let (pth, cli_out) = (d.join("reference.pth"), d.join("cli"));
    let import = |extra: &[&str]| {
        let mut args = vec!["import", "--pth", pth.to_str().unwrap(), "--out", cli_out.to_str().unwrap()];
        args.extend(extra);
        common::run_bin(&args)
    };
    let (ok, text) = import(&["--ngf", "16"]);
    assert!(!ok && text.contains("--ngf 16") && text.contains("ngf 8"), "{text}");
    let (ok, text) = import(&[]);
    assert!(ok && text.contains("ngf 8, 9 blocks"), "{text}");

    let cli = d.join("cli");
    let export = |direction: &str, precision: &str, out: &Path| {
        common::run_bin(&[
            "export",
            "--checkpoint",
            cli.to_str().unwrap(),
            "--direction",
            direction,
            "--precision",
            precision,
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let (ok, text) = export("a2b", "fp16", &d.join("g.onnx"));
    assert!(ok && text.contains("fp16 graph"), "{text}");
    let (ok, text) = export("b2a", "fp32", &d.join("g.onnx"));
    assert!(!ok && text.contains("G_B.safetensors"), "{text}");
    let (ok, text) = export("a2b", "int8", &d.join("g.onnx"));
    assert!(!ok && text.contains("not fine-tuned for INT8") && text.contains("cyclegan-calib"), "{text}");
    let (ok, text) = export("sideways", "fp32", &d.join("g.onnx"));
    assert!(!ok && text.contains("sideways") && text.contains("a2b"), "{text}");
    let (ok, text) = export("a2b", "fp32", &d.join("x.pth/g.onnx"));
    assert!(!ok && text.contains("cannot write"), "{text}");
}

#[test]
fn hostile_and_broken_files_are_refused_without_running_anything() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let marker = d.join("pwned");
    let base = d.join("evil");
    common::run_python(&["save-hostile", "--out", base.to_str().unwrap(), "--marker", marker.to_str().unwrap()]);
    for suffix in [".zip.pth", ".legacy.pth"] {
        let path = d.join(format!("evil{suffix}"));
        let err =
            format!("{:#}", anyhow::Error::from(import_pth(&path, &d.join("out"), Direction::A2b, None).unwrap_err()));
        assert!(err.contains("refusing") && err.contains("system"), "{suffix}: {err}");
    }
    assert!(!marker.exists(), "the payload ran");
    assert!(!d.join("out").exists());

    let input = d.join("x.safetensors");
    Tensor::write_safetensors(&[("x", &Tensor::zeros([1, 3, 8, 8], (tch::Kind::Float, tch::Device::Cpu)))], &input)
        .unwrap();
    let good = d.join("good.pth");
    let out = d.join("out.safetensors");
    common::run_python(&[
        "save-pth",
        "--out",
        good.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    let bytes = std::fs::read(&good).unwrap();
    for cut in [10, bytes.len() / 3, bytes.len() - 30] {
        let truncated = d.join(format!("cut{cut}.pth"));
        std::fs::write(&truncated, &bytes[..cut]).unwrap();
        let err = import_pth(&truncated, &d.join("out"), Direction::A2b, None);
        assert!(err.is_err(), "truncated at {cut} imported");
    }
    let not_pth = d.join("x.pth");
    std::fs::write(&not_pth, b"hello").unwrap();
    let err =
        format!("{:#}", anyhow::Error::from(import_pth(&not_pth, &d.join("out"), Direction::A2b, None).unwrap_err()));
    assert!(err.contains("x.pth") && err.contains("not a PyTorch checkpoint"), "{err}");
}
