//! `cyclegan-train`: train CycleGAN, distill it, fine-tune it for INT8, translate images, export
//! and import generators, count their cost, evaluate, make the synthetic dataset, benchmark.
//! Each subcommand's flags and handler live in the module named after it.
mod bench;
mod datasets;
mod eval;
mod generator;
mod run;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use cyclegan_train::synth::{self, SynthOptions};
use indicatif::ProgressBar;

#[derive(Parser)]
#[command(name = "cyclegan-train", version, about = "Train CycleGAN (Zhu et al. 2017) with libtorch")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train on DATAROOT/trainA and DATAROOT/trainB.
    Fit(run::RunArgs),
    /// Distill a trained generator (--teacher) into the smaller generator of [model]: from a
    /// recipe such as configs/train/distill-mobile.toml, on the teacher's source domain.
    Distill(run::DistillArgs),
    /// Fine-tune a trained generator (--checkpoint) for INT8: fake quantization where
    /// cyclegan-calib puts Q/DQ, scales from a calibration (--calibrated, or one made here) then
    /// learned; export the result with `export --precision int8`. Recipe: configs/train/qat.toml.
    Qat(run::QatArgs),
    /// Translate an image or a folder of images with a trained generator.
    Translate(generator::TranslateArgs),
    /// Export a generator as ONNX (the input of calibration and of the edge runtime).
    Export(generator::ExportArgs),
    /// Import a ResNet generator saved by PyTorch (a state_dict .pth) as a checkpoint folder.
    Import(generator::ImportArgs),
    /// Parameters and multiply-accumulates of a generator, per layer and in total, counted on its
    /// ONNX graph as thop counts PyTorch modules.
    Info(generator::InfoArgs),
    /// A generator's quality: PSNR against ground truth, FID and KID, temporal consistency.
    #[command(subcommand)]
    Eval(eval::EvalCommand),
    /// The reference project's unpaired datasets by name: `datasets list`, `datasets get NAME`
    #[command(subcommand)]
    Datasets(datasets::DatasetsCommand),
    /// Generate the synthetic summer-to-winter dataset with a known mapping.
    Synth {
        #[arg(long)]
        out: std::path::PathBuf,
        /// Training images per domain.
        #[arg(long, default_value_t = SynthOptions::default().train)]
        train: usize,
        /// Test images (testA and its ground truth testB).
        #[arg(long, default_value_t = SynthOptions::default().test)]
        test: usize,
        /// Side of the square images in pixels.
        #[arg(long, default_value_t = SynthOptions::default().size)]
        size: u32,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Benchmarks against the peers: speed against PyTorch, quality after a fixed budget,
    /// distilled students against their teacher.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

/// A bar for work of `n` items and the `(done, n)` callback that moves it.
fn progress_bar() -> (ProgressBar, impl Fn(usize, usize)) {
    let bar = ProgressBar::new(0);
    let update = bar.clone();
    (bar, move |i, n| {
        update.set_length(n as u64);
        update.set_position(i as u64);
    })
}

/// Errors print once, with their causes on one line, the same in every binary of the project.
fn main() {
    if let Err(e) = dispatch() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn dispatch() -> Result<()> {
    match Cli::parse().command {
        Command::Fit(args) => run::fit(args),
        Command::Distill(args) => run::distill(args),
        Command::Qat(args) => run::qat(args),
        Command::Translate(args) => generator::translate(args),
        Command::Export(args) => generator::export(args),
        Command::Import(args) => generator::import(args),
        Command::Info(args) => generator::info(args),
        Command::Eval(command) => eval::run(command),
        Command::Synth { out, train, test, size, seed } => {
            let opts = SynthOptions { train, test, size, seed };
            let bar = ProgressBar::new((2 * train + test) as u64);
            synth::generate(&out, &opts, |done, _| bar.set_position(done as u64))
                .with_context(|| format!("cannot write the synthetic dataset to {}", out.display()))?;
            bar.finish_and_clear();
            println!("wrote {} ({train} train images per domain, {test} test pairs, {size}x{size})", out.display());
            Ok(())
        }
        Command::Datasets(command) => datasets::run(command),
        Command::Bench(command) => bench::run(command),
    }
}
