//! The whole chain on a tiny model, on the CPU: synthetic data -> a few training steps (the
//! teacher) -> a few distillation steps into a mobile student -> FP32 ONNX export -> INT8
//! calibration -> the edge pipeline running the INT8 student into an MP4 that decodes with the
//! right number of frames.
use std::sync::atomic::AtomicBool;

use cyclegan_calibration::calibrate::{Options, calibrate};
use cyclegan_calibration::graph::Residual;
use cyclegan_calibration::scales::Method;
use cyclegan_edge::config::EdgeConfig;
use cyclegan_edge::preprocess::InferenceSize;
use cyclegan_model::Direction;
use cyclegan_model::{Family, GeneratorConfig};
use cyclegan_onnx::{FloatType, Precision};
use cyclegan_train::config::{DistillConfig, Preprocess, TrainConfig};
use cyclegan_train::distill::distill;
use cyclegan_train::export::{ExportOptions, export_generator};
use cyclegan_train::synth::{SynthOptions, generate};
use cyclegan_train::trainer::{FitOptions, fit};

#[test]
fn synth_fit_distill_export_calibrate_and_run_the_int8_student_on_video() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    generate(&data, &SynthOptions { train: 16, test: 16, size: 48, seed: 3 }, |_, _| {}).unwrap();

    let mut cfg = TrainConfig::default();
    cfg.data.dataroot = data.clone();
    cfg.data.preprocess = Preprocess::Crop;
    cfg.data.crop_size = 48;
    cfg.data.num_workers = 1;
    cfg.model.ngf = 8;
    cfg.model.ndf = 8;
    cfg.model.n_blocks = 6;
    cfg.train.threads = 2;
    cfg.output.checkpoints_dir = dir.path().join("runs");
    cfg.output.name = "chain".into();
    cfg.output.sample_freq = 0;
    let teacher = fit(&cfg, &FitOptions { max_iterations: Some(4), quiet: true, ..Default::default() }).unwrap();
    assert_eq!(teacher.iterations, 4);

    cfg.model.generator = Family::Mobile;
    cfg.model.ngf = 4;
    cfg.model.n_blocks = 3;
    cfg.output.name = "student".into();
    cfg.distill = Some(DistillConfig { teacher: teacher.run_dir.clone(), ..Default::default() });
    let run = distill(&cfg, &FitOptions { max_iterations: Some(4), quiet: true, ..Default::default() }).unwrap();
    assert_eq!(run.iterations, 4);

    let fp32 = dir.path().join("G.onnx");
    let opts = ExportOptions { direction: Direction::A2b, precision: Precision::Fp32, io_type: FloatType::F32 };
    let model = export_generator(&run.run_dir, &opts).unwrap();
    let meta = cyclegan_onnx::GeneratorMetadata::read_from(&model).unwrap();
    let generator: GeneratorConfig = serde_json::from_str(&meta.generator).unwrap();
    assert_eq!((generator.family, generator.ngf), (Family::Mobile, 4));
    cyclegan_onnx::io::write_model(&fp32, &model).unwrap();

    let int8 = dir.path().join("G.int8.onnx");
    let report = calibrate(&Options {
        model: fp32.clone(),
        images: data.join("testA"),
        num: 64,
        method: Method::Mse,
        size: InferenceSize::Auto,
        out: int8.clone(),
        trt_cache: None,
        trt_version: "10.3.0".parse().unwrap(),
        keep_fp: Vec::new(),
        residual: Residual::Int8,
        target_psnr: None,
        refine: true,
        report: None,
        save_inputs: false,
        threads: 2,
        quiet: true,
    })
    .unwrap();
    assert_eq!(report.calibration_images, 12);
    assert!(report.kept_fp.is_empty());

    let video = dir.path().join("winter.mp4");
    let mut edge = EdgeConfig::default();
    edge.inference.model = Some(int8.clone());
    edge.inference.threads = 2;
    edge.input.input = "test://ball".into();
    edge.input.width = 96;
    edge.input.height = 64;
    edge.input.num_frames = 15;
    edge.output.output = video.to_string_lossy().into_owned();
    let done = cyclegan_edge::pipeline::run(&edge, &AtomicBool::new(false), |_| {}).unwrap();
    assert!(done.model.contains("int8"), "{}", done.model);
    let decoded = cyclegan_edge::pipeline::decode_file(&video).unwrap();
    assert_eq!((decoded.frames, decoded.width, decoded.height), (15, 96, 64));
}
