//! Short CPU trainings on the synthetic dataset: learning happens, the temporal term makes the
//! generator steadier on moving sequences, and a resumed run continues exactly as the
//! uninterrupted one, with and without the temporal term.
mod common;

use std::path::Path;

use cyclegan_model::Direction;
use cyclegan_train::config::{Preprocess, TrainConfig};
use cyclegan_train::eval::{paired_psnr, temporal};
use cyclegan_train::report::LossLog;
use cyclegan_train::trainer::{FitOptions, Losses, fit};
use cyclegan_train::translate::Translator;
use tch::Device;

fn tiny(dataroot: &Path, runs: &Path, name: &str, size: u32) -> TrainConfig {
    let mut c = TrainConfig::default();
    c.data.dataroot = dataroot.to_path_buf();
    c.data.preprocess = Preprocess::Crop;
    c.data.crop_size = size;
    c.data.num_workers = 2;
    c.model.ngf = 8;
    c.model.ndf = 16;
    c.model.n_blocks = 6;
    c.train.threads = 2;
    c.output.checkpoints_dir = runs.to_path_buf();
    c.output.name = name.into();
    c.output.sample_freq = 0;
    c.output.log_freq = 1;
    c
}

/// libtorch's random generator is global: trainings in parallel threads would share it.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn quiet(max: Option<u64>) -> FitOptions {
    FitOptions { max_iterations: max, quiet: true, ..Default::default() }
}

#[test]
fn short_training_lowers_cycle_loss_and_raises_psnr() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let data = common::synth(dir.path(), 60, 32);
    let mut cfg = tiny(&data, &dir.path().join("runs"), "learn", 32);
    cfg.model.ngf = 16;
    cfg.train.lr = 1e-3;
    cfg.train.n_epochs = 5;
    cfg.train.n_epochs_decay = 0;

    let first = fit(&cfg, &quiet(Some(1))).unwrap();
    let before = paired_psnr(&Translator::load(&first.run_dir, Direction::A2b, Device::Cpu).unwrap(), &data).unwrap();
    let resume = FitOptions { resume: Some(first.run_dir.clone()), ..quiet(None) };
    let done = fit(&cfg, &resume).unwrap();
    assert_eq!(done.iterations, 300);
    let after = paired_psnr(&Translator::load(&done.run_dir, Direction::A2b, Device::Cpu).unwrap(), &data).unwrap();
    assert!(
        after.psnr_model > before.psnr_model + 3.0 && after.psnr_model > after.psnr_identity,
        "PSNR before {:.2} dB, after {:.2} dB, identity {:.2} dB",
        before.psnr_model,
        after.psnr_model,
        after.psnr_identity
    );

    let rows = LossLog::open(&done.run_dir.join("losses.csv"), &Losses::NAMES, u64::MAX).unwrap().rows;
    assert_eq!(rows.len(), 300);
    let cycle = |r: &[cyclegan_train::report::LossRow]| {
        r.iter().map(|r| r.losses[2] + r.losses[6]).sum::<f64>() / r.len() as f64
    };
    let (early, late) = (cycle(&rows[..30]), cycle(&rows[270..]));
    assert!(late < 0.6 * early, "cycle loss went from {early:.3} to {late:.3}");
    assert!(done.run_dir.join("loss_curves.png").is_file());
    assert!(done.run_dir.join("epoch_0005/state.json").is_file());
}

#[test]
fn the_temporal_term_lowers_the_warping_error() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let data = common::synth(dir.path(), 40, 32);
    let runs = dir.path().join("runs");
    let test_a = data.join("testA");
    let score = |lambda: f64| {
        let mut cfg = tiny(&data, &runs, &format!("temporal-{lambda}"), 32);
        cfg.train.lr = 1e-3;
        cfg.train.n_epochs = 4;
        cfg.train.n_epochs_decay = 0;
        cfg.train.lambda_temporal = lambda;
        cfg.output.sample_freq = 160;
        let done = fit(&cfg, &quiet(None)).unwrap();
        assert_eq!(done.iterations, 160);
        let t = Translator::load(&done.run_dir, Direction::A2b, Device::Cpu).unwrap();
        let grid = image::open(done.run_dir.join("samples/iter_00000160.png")).unwrap();
        // Two CycleGAN rows, and with the term one row per generator: x, W(x), G(W(x)), W(G(x)).
        let rows = if lambda > 0.0 { 4 } else { 2 };
        assert_eq!(grid.height(), rows * 32 + (rows - 1) * 4);
        let psnr = paired_psnr(&t, &data).unwrap().psnr_model;
        (temporal(&t, &test_a, 8, 4, |_, _| {}).unwrap(), psnr)
    };
    let (without, psnr_without) = score(0.0);
    let (with, psnr_with) = score(10.0);
    println!(
        "without the term:\n{}PSNR {psnr_without:.2} dB\nwith it:\n{}PSNR {psnr_with:.2} dB",
        without.table(),
        with.table()
    );
    assert!(
        with.output < 0.8 * without.output,
        "warping error x1e3: {:.4} with the term, {:.4} without (floor {:.4})",
        with.output * 1e3,
        without.output * 1e3,
        with.input * 1e3
    );
    assert!(psnr_with > psnr_without - 2.0, "PSNR {psnr_with:.2} dB with the term, {psnr_without:.2} without");
}

#[test]
fn resumed_run_repeats_the_uninterrupted_losses() {
    for lambda_temporal in [0.0, 10.0] {
        resumed_run_repeats(lambda_temporal);
    }
}

fn resumed_run_repeats(lambda_temporal: f64) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let data = common::synth(dir.path(), 10, 32);
    let runs = dir.path().join("runs");
    let mut cfg = tiny(&data, &runs, "straight", 32);
    cfg.train.lambda_temporal = lambda_temporal;
    cfg.train.pool_size = 3;
    cfg.train.n_epochs = 1;
    cfg.train.n_epochs_decay = 1;
    cfg.data.batch_size = 2;

    let straight = fit(&cfg, &quiet(None)).unwrap();
    assert_eq!(straight.iterations, 10);

    cfg.output.name = "interrupted".into();
    let stopped = fit(&cfg, &quiet(Some(7))).unwrap();
    assert_eq!(stopped.iterations, 7);
    assert!(stopped.last_checkpoint.unwrap().ends_with("iter_00000007"));
    let resumed = fit(&cfg, &FitOptions { resume: Some(stopped.run_dir.clone()), ..quiet(None) }).unwrap();
    assert_eq!(resumed.iterations, 10);

    let mut names = Losses::NAMES.to_vec();
    if lambda_temporal > 0.0 {
        names.extend(Losses::TEMPORAL_NAMES);
    }
    let a = LossLog::open(&straight.run_dir.join("losses.csv"), &names, u64::MAX).unwrap().rows;
    let b = LossLog::open(&resumed.run_dir.join("losses.csv"), &names, u64::MAX).unwrap().rows;
    assert_eq!(a.len(), 10);
    assert!(a.iter().all(|r| r.losses.len() == names.len()));
    if lambda_temporal > 0.0 {
        assert!(a.iter().all(|r| r.losses[8] > 0.0 && r.losses[9] > 0.0), "the temporal terms ran");
    }
    assert_eq!(b.len(), 10);
    common::assert_same_losses(&a, &b);
    assert!(a[9].lr < a[0].lr, "the second epoch decays the learning rate");
}
