//! Exported generators of both families (the paper's ResNet and the mobile student) checked by
//! the ONNX tools themselves: `onnx.checker` (full check) and ONNX Runtime, whose outputs on real
//! images must equal ours (FP32 within 1e-4, FP16 graph at 45 dB PSNR or better) at two
//! resolutions with batch 2.
mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use cyclegan_model::Direction;
use cyclegan_model::{Family, GeneratorConfig};
use cyclegan_onnx::{FloatType, GeneratorMetadata, Precision, read_model, validate_generator};
use cyclegan_train::config::{Preprocess, TrainConfig};
use cyclegan_train::export::{ExportOptions, export_generator};
use cyclegan_train::imageio::rgb_to_tensor;
use cyclegan_train::trainer::{FitOptions, fit};
use cyclegan_train::translate::Translator;
use tch::{Kind, Tensor};

fn trained_checkpoint(dir: &Path, family: Family) -> (std::path::PathBuf, std::path::PathBuf) {
    let data = common::synth(dir, 4, 64);
    let mut c = TrainConfig::default();
    c.data.dataroot = data.clone();
    c.data.preprocess = Preprocess::Crop;
    c.data.crop_size = 32;
    c.data.domain_a = "summer".into();
    c.data.domain_b = "winter".into();
    c.model.generator = family;
    c.model.ngf = 8;
    c.model.ndf = 8;
    c.model.n_blocks = 6;
    c.output.checkpoints_dir = dir.join("runs");
    c.output.name = "export".into();
    c.output.sample_freq = 0;
    let run = fit(&c, &FitOptions { max_iterations: Some(4), quiet: true, ..Default::default() }).unwrap().run_dir;
    (run, data)
}

/// Two batches of real images: 2 x 64x64 and 2 x 48x80.
fn inputs(data: &Path) -> Vec<(String, Tensor)> {
    let img = |i: usize| image::open(data.join(format!("testA/{i:05}.png"))).unwrap().to_rgb8();
    let wide = |i: usize| image::imageops::resize(&img(i), 80, 48, image::imageops::FilterType::Triangle);
    vec![
        ("square".into(), Tensor::cat(&[rgb_to_tensor(&img(0)), rgb_to_tensor(&img(1))], 0)),
        ("wide".into(), Tensor::cat(&[rgb_to_tensor(&wide(2)), rgb_to_tensor(&wide(3))], 0)),
    ]
}

#[test]
fn exports_pass_the_onnx_checker_and_match_onnx_runtime() {
    for family in [Family::Resnet, Family::Mobile] {
        exports_of(family);
    }
}

fn exports_of(family: Family) {
    let dir = tempfile::tempdir().unwrap();
    let (run, data) = trained_checkpoint(dir.path(), family);
    let inputs = inputs(&data);
    let ours: HashMap<String, Tensor> = {
        let t = Translator::load(&run, Direction::A2b, tch::Device::Cpu).unwrap();
        inputs.iter().map(|(n, x)| (n.clone(), t.forward(x))).collect()
    };
    for (precision, io) in
        [(Precision::Fp32, FloatType::F32), (Precision::Fp16, FloatType::F32), (Precision::Fp16, FloatType::F16)]
    {
        let path = dir.path().join(format!("g_{}_{io:?}.onnx", precision.name()));
        let opts = ExportOptions { direction: Direction::A2b, precision, io_type: io };
        cyclegan_onnx::write_model(&path, &export_generator(&run, &opts).unwrap()).unwrap();

        let model = read_model(&path).unwrap();
        let meta = GeneratorMetadata::read_from(&model).unwrap();
        assert_eq!(
            (meta.direction.as_str(), meta.source_domain.as_str(), meta.target_domain.as_str()),
            ("a2b", "summer", "winter")
        );
        assert_eq!((meta.training_resolution, meta.precision, meta.input_range.as_str()), (32, precision, "[-1,1]"));
        assert_eq!(meta.source_sha256.len(), 64);
        let generator: GeneratorConfig = serde_json::from_str(&meta.generator).unwrap();
        assert_eq!(generator.family, family);
        let info = validate_generator(&model).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!((info.io_type, info.precision), (io, precision));
        let ops: HashSet<&str> = model.graph.as_ref().unwrap().node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops.contains("Cast"), io != precision.weight_type(), "{ops:?}");

        let theirs = common::onnx_runtime(&path, &inputs, dir.path());
        for (name, y) in &ours {
            let diff = (y - &theirs[name]).abs().max().double_value(&[]);
            let mse = (y - &theirs[name]).square().mean(Kind::Float).double_value(&[]);
            let psnr = 10.0 * (4.0 / mse.max(1e-20)).log10();
            assert_eq!(y.size(), theirs[name].size());
            match precision {
                Precision::Fp32 => assert!(diff < 1e-4, "{family:?} {name} fp32: max abs difference {diff}"),
                _ => assert!(psnr >= 45.0, "{family:?} {name} {precision} ({io:?} I/O): PSNR {psnr:.1} dB"),
            }
        }
    }

    let b2a = export_generator(
        &run,
        &ExportOptions { direction: Direction::B2a, precision: Precision::Fp32, io_type: FloatType::F32 },
    )
    .unwrap();
    let meta = GeneratorMetadata::read_from(&b2a).unwrap();
    assert_eq!(
        (meta.direction.as_str(), meta.source_domain.as_str(), meta.target_domain.as_str()),
        ("b2a", "winter", "summer")
    );
}
