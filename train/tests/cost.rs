//! The parameter and MAC counter (`cyclegan_onnx::cost`, what `cyclegan-train info` prints)
//! agrees with thop, the profiler behind the literature's figures, on the PyTorch reference
//! generators of both families, and `info` reads checkpoints and ONNX files.
mod common;

use cyclegan_model::export::{ExportOptions, generator_graph};
use cyclegan_model::{Direction, Family, GeneratorConfig, NamedTensor, layout};
use cyclegan_onnx::contract::OPSET;
use cyclegan_onnx::cost::cost;
use cyclegan_onnx::{FloatType, Precision};
use cyclegan_train::checkpoint;
use cyclegan_train::config::TrainConfig;
use cyclegan_train::trainer::CycleGan;
use rand::{Rng, SeedableRng};
use tch::Device;

fn exported(cfg: &GeneratorConfig) -> cyclegan_onnx::pb::ModelProto {
    // Learned-looking values: a norm's scale of ones and shift of zeros reads as no affine at all.
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let weights = layout::parameters(cfg)
        .into_iter()
        .map(|(name, shape)| {
            let n = shape.iter().product::<i64>() as usize;
            let data = (0..n).map(|_| 0.5 + 0.1 * rng.random_range(-1.0f32..1.0)).collect();
            (name.clone(), NamedTensor { name, shape, data })
        })
        .collect();
    let opts = ExportOptions { direction: Direction::A2b, precision: Precision::Fp32, io_type: FloatType::F32 };
    generator_graph(cfg, &weights, &opts).unwrap().finish(OPSET, "test", "0")
}

#[test]
fn the_onnx_counter_agrees_with_thop_on_both_families() {
    let cases = [
        (Family::Resnet, 64, 9, false, (256, 256)),
        (Family::Resnet, 8, 6, true, (64, 96)),
        (Family::Mobile, 32, 9, false, (256, 256)),
        (Family::Mobile, 16, 6, true, (360, 640)),
    ];
    for (family, ngf, n_blocks, affine_norm, (height, width)) in cases {
        let cfg = GeneratorConfig { in_channels: 3, out_channels: 3, ngf, n_blocks, affine_norm, family };
        let ours = cost(&exported(&cfg), height, width).unwrap();
        let name = serde_json::to_value(family).unwrap();
        let mut args = vec!["thop".to_string(), "--family".into(), name.as_str().unwrap().into()];
        for (flag, v) in [("--ngf", ngf), ("--n-blocks", n_blocks), ("--height", height), ("--width", width)] {
            args.extend([flag.to_string(), v.to_string()]);
        }
        if affine_norm {
            args.push("--affine".into());
        }
        let printed = common::run_python(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let theirs: serde_json::Value = serde_json::from_str(printed.trim()).unwrap();
        assert_eq!(ours.macs, theirs["macs"].as_u64().unwrap(), "{cfg:?} at {width}x{height}: MACs");
        assert_eq!(ours.parameters, theirs["params"].as_u64().unwrap(), "{cfg:?}: parameters");
    }
}

#[test]
fn the_paper_generator_and_the_student_cost_what_they_should() {
    let paper = GeneratorConfig {
        in_channels: 3,
        out_channels: 3,
        ngf: 64,
        n_blocks: 9,
        affine_norm: false,
        family: Family::Resnet,
    };
    // 11,378,179 parameters (PyTorch's count); 56.8 GMAC of convolutions at 256x256 (GAN
    // Compression, Li et al. 2020, Table 1) plus thop's 65 MMAC of instance norms.
    let c = cost(&exported(&paper), 256, 256).unwrap();
    assert_eq!(c.parameters, 11_378_179);
    let convolutions: u64 = c.nodes.iter().filter(|n| n.op.starts_with("Conv")).map(|n| n.macs).sum();
    assert_eq!((convolutions as f64 / 1e8).round(), 568.0, "{convolutions} MACs");
    // The edge student of the distillation recipes: at least 10x cheaper.
    let student = GeneratorConfig { ngf: 32, family: Family::Mobile, ..paper };
    let s = cost(&exported(&student), 256, 256).unwrap();
    assert!(s.macs * 10 <= c.macs, "student {} vs teacher {} MACs", s.macs, c.macs);
    let depthwise = s.nodes.iter().filter(|n| n.op == "Conv" && n.parameters == 128 * 9 + 128).count();
    assert_eq!(depthwise, 2 * 9, "one depthwise convolution per separable conv");
}

#[test]
fn info_reads_a_checkpoint_and_an_onnx_file() {
    let dir = tempfile::tempdir().unwrap();
    let onnx = common::workspace().join("models/summer2winter-demo/generator.onnx");
    let (ok, text) = common::run_bin(&["info", "--onnx", onnx.to_str().unwrap(), "--size", "640x360"]);
    assert!(ok && text.contains("model.1.Conv") && text.contains("at 640x360"), "{text}");
    let (ok, text) = common::run_bin(&["info", "--onnx", onnx.to_str().unwrap(), "--size", "640"]);
    assert!(!ok && text.contains("--size") && text.contains("WxH"), "{text}");
    let missing = dir.path().join("none.onnx");
    let (ok, text) = common::run_bin(&["info", "--onnx", missing.to_str().unwrap()]);
    assert!(!ok && text.contains("none.onnx"), "{text}");
    let (ok, text) = common::run_bin(&["info", "--checkpoint", dir.path().to_str().unwrap()]);
    assert!(!ok && text.contains(dir.path().to_str().unwrap()), "{text}");

    // A mobile checkpoint: its total is the counter's on the same generator.
    let mut config = TrainConfig::default();
    config.model.generator = Family::Mobile;
    config.model.ngf = 8;
    config.model.n_blocks = 3;
    let gan = CycleGan::new(&config, Device::Cpu);
    let ckpt = gan.save_checkpoint(dir.path(), "ck", &checkpoint::new_state(&config)).unwrap();
    let (ok, text) = common::run_bin(&["info", "--checkpoint", ckpt.to_str().unwrap(), "--size", "64x48"]);
    let expected = cost(&exported(&config.model.generator()), 48, 64).unwrap();
    let total = format!("total: {} parameters", expected.parameters);
    assert!(ok && text.contains(&total) && text.contains("at 64x48"), "{text}");
}
