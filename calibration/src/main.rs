//! `cyclegan-calib`: INT8 Q/DQ quantization of an exported generator, measured against FP32.
use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use cyclegan_calibration::calibrate::{Options, calibrate};
use cyclegan_calibration::graph::Residual;
use cyclegan_calibration::scales::Method;
use cyclegan_calibration::trt_cache::TrtVersion;
use cyclegan_calibration::{compare, images};
use cyclegan_runtime::preprocess::InferenceSize;

#[derive(Parser)]
#[command(version, about = "Quantize a CycleGAN generator to INT8 (Q/DQ) for TensorRT 10/11 and measure the cost")]
struct Cli {
    /// Generator ONNX exported by `cyclegan-train export` (FP32).
    #[arg(long)]
    model: PathBuf,
    /// Folder of calibration images (like the frames the model will see); the last fifth is held
    /// out to measure quality.
    #[arg(long)]
    images: PathBuf,
    /// Calibration images to use at most.
    #[arg(long, default_value_t = Options::DEFAULT_NUM)]
    num: usize,
    /// Activation thresholds: entropy (TensorRT's KL method), mse (smallest expected squared
    /// error), percentile (99.99), percentile:P, minmax.
    #[arg(long, default_value = "mse", value_parser = parse_method)]
    method: Method,
    /// Inference size as the edge runtime's `inference-size`: auto, a shorter side, or WxH.
    #[arg(long, default_value = "auto", value_parser = parse_size)]
    size: InferenceSize,
    /// Where the Q/DQ model goes.
    #[arg(long, required_unless_present = "evaluate")]
    out: Option<PathBuf>,
    /// Instead of calibrating: measure these INT8 models of --model's generator (from
    /// cyclegan-calib or `cyclegan-train export --precision int8` after qat; comma-separated)
    /// against it on every image of --images (up to --num): layers in float, INT8 share of
    /// MACs, PSNR, SSIM, ONNX Runtime CPU ms. Give images none of them was calibrated or
    /// fine-tuned on.
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["out", "target_psnr", "keep_fp", "trt_cache"])]
    evaluate: Vec<PathBuf>,
    /// With --evaluate: timed ONNX Runtime runs per model at 256x256 (0: no latency).
    #[arg(long, default_value_t = 7, requires = "evaluate")]
    latency_runs: usize,
    /// Also write a TensorRT calibration cache (implicit INT8 on TensorRT 10).
    #[arg(long)]
    trt_cache: Option<PathBuf>,
    /// TensorRT version named in the cache header.
    #[arg(long, default_value_t = TrtVersion::JETPACK6, value_parser = parse_version)]
    trt_version: TrtVersion,
    /// Layers to leave in floating point (comma-separated node names).
    #[arg(long, value_delimiter = ',', conflicts_with = "target_psnr")]
    keep_fp: Vec<String>,
    /// Leave the residual (skip) input of every Add in floating point: the stream that carries the
    /// picture through the residual blocks stays unquantized; every convolution stays INT8.
    #[arg(long)]
    float_residual: bool,
    /// Keep the most damaging layers in floating point until the INT8 model reaches this PSNR
    /// (dB, vs FP32 on held-out images).
    #[arg(long)]
    target_psnr: Option<f64>,
    /// Folder for report.json, report.md, compare.png and heldout.safetensors.
    #[arg(long)]
    report: Option<PathBuf>,
    /// CPU threads for ONNX Runtime (0: all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

fn parse_method(s: &str) -> Result<Method, String> {
    s.parse().map_err(|e: cyclegan_calibration::Error| e.to_string())
}

fn parse_size(s: &str) -> Result<InferenceSize, String> {
    s.parse().map_err(|e: cyclegan_runtime::Error| e.to_string())
}

fn parse_version(s: &str) -> Result<TrtVersion, String> {
    s.parse().map_err(|e: cyclegan_calibration::Error| e.to_string())
}

/// Errors print once, with their causes on one line, the same in every binary of the project.
fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    let Some(out) = cli.out else {
        let opts = compare::Options {
            reference: cli.model,
            models: cli.evaluate,
            images: cli.images,
            num: cli.num,
            size: cli.size,
            threads: cli.threads,
            latency_runs: cli.latency_runs,
        };
        let rows = compare::compare(&opts)?;
        print!("{}", compare::table(&rows, &opts.images, images::list(&opts.images)?.len().min(opts.num)));
        return Ok(());
    };
    let opts = Options {
        model: cli.model,
        images: cli.images,
        num: cli.num,
        method: cli.method,
        size: cli.size,
        out,
        trt_cache: cli.trt_cache,
        trt_version: cli.trt_version,
        keep_fp: cli.keep_fp,
        residual: if cli.float_residual { Residual::Float } else { Residual::Int8 },
        target_psnr: cli.target_psnr,
        report: cli.report,
        threads: cli.threads,
        quiet: cli.quiet,
    };
    let report = calibrate(&opts)?;
    print!("{}", report.table());
    println!("\nwrote {}", opts.out.display());
    if let Some(cache) = &opts.trt_cache {
        println!("wrote {}", cache.display());
    }
    if let Some(dir) = &opts.report {
        println!("wrote {}/report.json, report.md, compare.png, heldout.safetensors", dir.display());
    }
    Ok(())
}
