//! `bench quality`: PSNR on the synthetic task after a fixed training budget.
use std::time::Instant;

use anyhow::Result;
use cyclegan_model::Direction;
use cyclegan_train::config::{Preprocess, TrainConfig};
use cyclegan_train::eval::paired_psnr;
use cyclegan_train::synth::{self, SynthOptions};
use cyclegan_train::trainer::{FitOptions, fit};
use cyclegan_train::translate::Translator;
use tch::Device;

use super::scratch_dir;

#[derive(clap::Args)]
pub struct QualityArgs {
    /// Training steps.
    #[arg(long, default_value_t = 600)]
    steps: u64,
    /// Side of the square synthetic images.
    #[arg(long, default_value_t = 64)]
    size: u32,
    /// CPU threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

pub fn run(args: &QualityArgs) -> Result<()> {
    let dir = scratch_dir("quality")?;
    let data = dir.join("synth");
    let size = args.size;
    synth::generate(&data, &SynthOptions { train: 100, test: 20, size, seed: 1 }, |_, _| {})?;
    let mut cfg = TrainConfig::default();
    cfg.data.dataroot = data.clone();
    cfg.data.preprocess = Preprocess::Crop;
    cfg.data.crop_size = size;
    cfg.data.num_workers = 2;
    cfg.model.ngf = 16;
    cfg.model.ndf = 32;
    cfg.model.n_blocks = 6;
    cfg.train.threads = args.threads;
    cfg.train.n_epochs = (args.steps as usize).div_ceil(100);
    cfg.train.n_epochs_decay = 0;
    cfg.output.checkpoints_dir = dir.join("runs");
    cfg.output.name = "quality".into();
    cfg.output.sample_freq = 0;
    cfg.output.save_epoch_freq = 0;
    let t0 = Instant::now();
    let first = fit(&cfg, &FitOptions { max_iterations: Some(1), quiet: true, ..Default::default() })?;
    let before = paired_psnr(&Translator::load(&first.run_dir, Direction::A2b, Device::Cpu)?, &data)?;
    let opts =
        FitOptions { resume: Some(first.run_dir.clone()), max_iterations: Some(args.steps), ..Default::default() };
    let done = fit(&cfg, &opts)?;
    let after = paired_psnr(&Translator::load(&done.run_dir, Direction::A2b, Device::Cpu)?, &data)?;
    println!(
        "\nQuality: synthetic summer->winter, {size}x{size}, ngf 16 / 6 blocks, {} steps in {:.0} s, {} test pairs",
        done.iterations,
        t0.elapsed().as_secs_f64(),
        after.images
    );
    println!("| model | PSNR vs ground truth (dB) |");
    println!("|---|---|");
    println!("| no translation (testA as is) | {:.2} |", after.psnr_identity);
    println!("| G_A after 1 step | {:.2} |", before.psnr_model);
    println!("| G_A after {} steps | {:.2} |", done.iterations, after.psnr_model);
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
