//! `cyclegan-calib`: INT8 Q/DQ quantization of an exported generator, measured against FP32.
mod args;

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::Result;
use args::{CalibrateArgs, Inputs};
use clap::Parser;
use cyclegan_calibration::calibrate::calibrate;
use cyclegan_calibration::{compare, images};

#[derive(Parser)]
#[command(
    name = "cyclegan-calib",
    version,
    about = "Quantize a CycleGAN generator to INT8 (Q/DQ) for TensorRT 10/11 and measure the cost",
    after_help = "Without a subcommand, the flags are calibrate's: `cyclegan-calib --model G.onnx --images DIR --out G.int8.onnx`."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Calibrate: write the Q/DQ model of --model, with a report of its cost against FP32 (the
    /// default subcommand).
    Calibrate(CalibrateArgs),
    /// Instead of calibrating: measure INT8 models of --model's generator against it on every
    /// image of --images (up to --num): layers in float, INT8 share of MACs, PSNR, SSIM, ONNX
    /// Runtime CPU ms. Give images none of them was calibrated or fine-tuned on.
    Evaluate {
        #[command(flatten)]
        inputs: Inputs,
        /// The INT8 models (from cyclegan-calib, or `cyclegan-train export --precision int8`
        /// after qat; comma-separated).
        #[arg(long, value_delimiter = ',', required = true)]
        int8: Vec<PathBuf>,
        /// Timed ONNX Runtime runs per model at 256x256 (0: no latency).
        #[arg(long, default_value_t = 7)]
        latency_runs: usize,
    },
}

/// Errors print once, with their causes on one line, the same in every binary of the project.
fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let opts = match Cli::parse_from(arguments()).command {
        Command::Calibrate(args) => args.options(),
        Command::Evaluate { inputs, int8, latency_runs } => return evaluate(inputs, int8, latency_runs),
    };
    let report = calibrate(&opts)?;
    print!("{}", report.table());
    println!("\nwrote {}", opts.out.display());
    if let Some(cache) = &opts.trt_cache {
        println!("wrote {}", cache.display());
    }
    if let Some(dir) = &opts.report {
        let inputs = if opts.save_inputs { ", calibration.safetensors" } else { "" };
        println!("wrote {}/report.json, report.md, compare.png, heldout.safetensors{inputs}", dir.display());
    }
    Ok(())
}

fn evaluate(inputs: Inputs, int8: Vec<PathBuf>, latency_runs: usize) -> Result<()> {
    let opts = compare::Options {
        reference: inputs.model,
        models: int8,
        images: inputs.images,
        num: inputs.num,
        size: inputs.size,
        threads: inputs.threads,
        latency_runs,
    };
    let rows = compare::compare(&opts)?;
    print!("{}", compare::table(&rows, &opts.images, images::list(&opts.images)?.len().min(opts.num)));
    Ok(())
}

/// The command line, with `calibrate` put in front of flags given without a subcommand: the
/// calibration is what `cyclegan-calib --model ... --out ...` has always run.
fn arguments() -> Vec<OsString> {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let bare_flags = args
        .get(1)
        .and_then(|a| a.to_str())
        .is_some_and(|a| a.starts_with('-') && !matches!(a, "-h" | "--help" | "-V" | "--version"));
    if bare_flags {
        args.insert(1, "calibrate".into());
    }
    args
}
