//! Distillation on the CPU: a mobile student learns to translate as its teacher does on images
//! neither trained on, a resumed distillation continues exactly, the student exports like any
//! generator, and bad teachers and data get one clear message each.
mod common;

use std::path::{Path, PathBuf};

use cyclegan_model::Direction;
use cyclegan_model::Family;
use cyclegan_onnx::{FloatType, Precision, validate_generator};
use cyclegan_train::config::{DistillConfig, Preprocess, TrainConfig};
use cyclegan_train::distill::{Distiller, LOSSES, distill};
use cyclegan_train::export::{ExportOptions, export_generator};
use cyclegan_train::imageio::rgb_to_tensor;
use cyclegan_train::report::LossLog;
use cyclegan_train::trainer::{FitOptions, Job, fit};
use cyclegan_train::translate::Translator;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tch::{Device, Kind, Tensor};

/// libtorch's random generator is global: trainings in parallel threads would share it.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn quiet(max: Option<u64>) -> FitOptions {
    FitOptions { max_iterations: max, quiet: true, ..Default::default() }
}

fn base(data: &Path, runs: &Path, name: &str) -> TrainConfig {
    let mut c = TrainConfig::default();
    c.data.dataroot = data.to_path_buf();
    c.data.preprocess = Preprocess::Crop;
    c.data.crop_size = 32;
    c.data.num_workers = 2;
    c.model.ngf = 8;
    c.model.ndf = 8;
    c.model.n_blocks = 6;
    c.train.threads = 2;
    c.output.checkpoints_dir = runs.to_path_buf();
    c.output.name = name.into();
    c.output.sample_freq = 0;
    c.output.log_freq = 1;
    c
}

/// A small CycleGAN trained for a few epochs: the teacher.
fn teacher(data: &Path, runs: &Path) -> PathBuf {
    let mut c = base(data, runs, "teacher");
    (c.data.domain_a, c.data.domain_b) = ("summer".into(), "winter".into());
    c.train.n_epochs = 2;
    c.train.n_epochs_decay = 0;
    fit(&c, &quiet(None)).unwrap().run_dir
}

fn student(data: &Path, runs: &Path, name: &str, teacher: &Path) -> TrainConfig {
    let mut c = base(data, runs, name);
    c.model.generator = Family::Mobile;
    c.model.ngf = 4;
    c.model.n_blocks = 3;
    c.train.lr = 1e-3;
    c.distill = Some(DistillConfig { teacher: teacher.to_path_buf(), ..Default::default() });
    c
}

/// PSNR (dB, on [-1, 1]) of the student against the teacher on the held-out testA images.
fn psnr_vs_teacher(student: &Path, teacher: &Path, data: &Path) -> f64 {
    let (s, t) = (
        Translator::load(student, Direction::A2b, Device::Cpu).unwrap(),
        Translator::load(teacher, Direction::A2b, Device::Cpu).unwrap(),
    );
    let images: Vec<Tensor> = cyclegan_train::data::list_images(&data.join("testA"), 0)
        .unwrap()
        .iter()
        .map(|p| rgb_to_tensor(&image::open(p).unwrap().to_rgb8()))
        .collect();
    let x = Tensor::cat(&images, 0);
    let mse = (s.forward(&x) - t.forward(&x)).square().mean(Kind::Float).double_value(&[]);
    10.0 * (4.0 / mse).log10()
}

#[test]
fn a_short_distillation_brings_the_student_to_its_teacher() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (data, runs) = (common::synth(dir.path(), 24, 32), dir.path().join("runs"));
    let teacher = teacher(&data, &runs);
    let mut c = student(&data, &runs, "learn", &teacher);
    c.train.n_epochs = 6;
    c.train.n_epochs_decay = 0;
    c.output.sample_freq = 50;

    let first = distill(&c, &quiet(Some(1))).unwrap();
    let before = psnr_vs_teacher(&first.run_dir, &teacher, &data);
    let done = distill(&c, &FitOptions { resume: Some(first.run_dir.clone()), ..quiet(None) }).unwrap();
    assert_eq!(done.iterations, 6 * 24);
    let after = psnr_vs_teacher(&done.run_dir, &teacher, &data);
    assert!(after >= before + 3.0, "PSNR vs teacher: {before:.2} dB after one step, {after:.2} dB at the end");

    let rows = LossLog::open(&done.run_dir.join("losses.csv"), &LOSSES, u64::MAX).unwrap().rows;
    let l1 = |r: &[cyclegan_train::report::LossRow]| r.iter().map(|r| r.losses[0]).sum::<f64>() / r.len() as f64;
    let (early, late) = (l1(&rows[..10]), l1(&rows[rows.len() - 10..]));
    assert!(late < 0.5 * early, "student-teacher L1 went from {early:.3} to {late:.3}");
    assert!(done.run_dir.join("samples/iter_00000050.png").is_file());
    assert!(done.run_dir.join("loss_curves.png").is_file() || !Path::new("/usr/share/fonts").exists());

    // The student exports as any generator: the contract holds, and ONNX Runtime (after
    // onnx.checker) agrees with tch.
    let opts = ExportOptions { direction: Direction::A2b, precision: Precision::Fp32, io_type: FloatType::F32 };
    let model = export_generator(&done.run_dir, &opts).unwrap();
    let info = validate_generator(&model).unwrap();
    let domains = (info.metadata.source_domain.as_str(), info.metadata.target_domain.as_str());
    assert_eq!(domains, ("summer", "winter"), "the student names the teacher's domains");
    let onnx = dir.path().join("student.onnx");
    cyclegan_onnx::write_model(&onnx, &model).unwrap();
    let x = rgb_to_tensor(&image::open(data.join("testA/00000.png")).unwrap().to_rgb8());
    let ours = Translator::load(&done.run_dir, Direction::A2b, Device::Cpu).unwrap().forward(&x);
    let theirs = common::onnx_runtime(&onnx, &[("x".to_string(), x)], dir.path());
    let diff = (&ours - &theirs["x"]).abs().max().double_value(&[]);
    assert!(diff < 1e-4, "ONNX Runtime vs tch: {diff}");
}

#[test]
fn a_resumed_distillation_repeats_the_uninterrupted_one() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (data, runs) = (common::synth(dir.path(), 6, 32), dir.path().join("runs"));
    let teacher = teacher(&data, &runs);
    let mut c = student(&data, &runs, "straight", &teacher);
    c.train.n_epochs = 1;
    c.train.n_epochs_decay = 1;
    // The adversarial term too: its discriminator starts from the teacher's D_A; and the
    // temporal term, whose warps come from the step's random stream.
    c.distill.as_mut().unwrap().lambda_gan = 1.0;
    c.train.lambda_temporal = 5.0;
    let straight = distill(&c, &quiet(None)).unwrap();
    assert_eq!(straight.iterations, 12);

    c.output.name = "interrupted".into();
    let stopped = distill(&c, &quiet(Some(5))).unwrap();
    let resumed = distill(&c, &FitOptions { resume: Some(stopped.run_dir.clone()), ..quiet(None) }).unwrap();
    assert_eq!(resumed.iterations, 12);
    let names = [&LOSSES[..], &["temporal"]].concat();
    let a = LossLog::open(&straight.run_dir.join("losses.csv"), &names, u64::MAX).unwrap().rows;
    let b = LossLog::open(&resumed.run_dir.join("losses.csv"), &names, u64::MAX).unwrap().rows;
    assert_eq!((a.len(), b.len()), (12, 12));
    common::assert_same_losses(&a, &b);
    assert!(a.iter().all(|r| r.losses[3] > 0.0 && r.losses[4] > 0.0), "the adversarial terms ran");
    assert!(a.iter().all(|r| r.losses[5] > 0.0), "the temporal term ran");
}

/// Function matching: the teacher labels the very view the student is shown (the sample grid's
/// first column), which with the default views is a dead-leaves image a quarter of the time.
#[test]
fn teacher_and_student_see_one_augmented_view() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (data, runs) = (common::synth(dir.path(), 4, 32), dir.path().join("runs"));
    let teacher_dir = teacher(&data, &runs);
    let c = student(&data, &runs, "views", &teacher_dir);
    let run_dir = runs.join("views");
    std::fs::create_dir_all(&run_dir).unwrap();
    let mut job = Distiller::new(&c, &run_dir, Device::Cpu).unwrap();
    let batch = rgb_to_tensor(&image::open(data.join("trainA/00000.png")).unwrap().to_rgb8());
    let teacher = Translator::load(&teacher_dir, Direction::A2b, Device::Cpu).unwrap();
    let mut changed = 0;
    for seed in 0..16 {
        let step = job.step(&batch, &batch, &mut StdRng::seed_from_u64(seed)).unwrap();
        let [view, taught, _student] = &step.samples[0][..] else { panic!("a row of three") };
        assert!(taught.allclose(&teacher.forward(view), 1e-5, 1e-5, false), "the teacher labelled another image");
        changed += usize::from(!view.allclose(&batch, 1e-3, 1e-3, false));
    }
    assert!((1..16).contains(&changed), "{changed} of 16 views differ from the dataset's image");
}

#[test]
fn bad_teachers_and_data_get_one_clear_message() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (data, runs) = (common::synth(dir.path(), 2, 32), dir.path().join("runs"));
    let message = |c: &TrainConfig| format!("{:#}", anyhow::Error::from(distill(c, &quiet(Some(1))).unwrap_err()));

    let c = student(&data, &runs, "missing", &dir.path().join("nowhere"));
    let text = message(&c);
    assert!(text.contains("--teacher") && text.contains("nowhere"), "{text}");
    assert!(!runs.join("missing").exists(), "a refused run leaves no folder");

    let mut c = student(&data, &runs, "no-section", Path::new("x"));
    c.distill = None;
    assert!(message(&c).contains("[distill]"));

    // A checkpoint imported from PyTorch holds one direction only.
    let pth = dir.path().join("g.pth");
    let input = dir.path().join("x.safetensors");
    Tensor::write_safetensors(&[("x", &Tensor::zeros([1, 3, 8, 8], (Kind::Float, Device::Cpu)))], &input).unwrap();
    let out = dir.path().join("out.safetensors");
    let paths = [pth.to_str().unwrap(), input.to_str().unwrap(), out.to_str().unwrap()];
    common::run_python(&["save-pth", "--out", paths[0], "--input", paths[1], "--output", paths[2]]);
    let imported = dir.path().join("imported");
    cyclegan_model::import::import_pth(&pth, &imported, Direction::A2b, None).unwrap();
    let mut c = student(&data, &runs, "wrong-direction", &imported);
    c.distill.as_mut().unwrap().direction = Direction::B2a;
    let text = message(&c);
    assert!(text.contains("--direction") && text.contains("b2a"), "{text}");

    // No images in the source domain.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(empty.join("trainA")).unwrap();
    let mut c = student(&empty, &runs, "no-images", &pth);
    c.data.dataroot = empty.clone();
    let text = message(&c);
    assert!(text.contains("trainA") && text.contains("no images"), "{text}");
}
