//! `cyclegan-edge`: run a CycleGAN generator on live video, or benchmark it.
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use cyclegan_edge::bench::{self, BenchOptions};
use cyclegan_edge::config::{EdgeConfig, Overrides};
use cyclegan_edge::pipeline::{self, Event, LiveStats};

#[derive(Parser)]
#[command(version, about = "CycleGAN generators on live video (GStreamer), on the CPU or TensorRT")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Translate a video stream: `run --input test:// --output out.mp4`
    Run {
        /// TOML pipeline description (configs/edge/*.toml); flags override its fields.
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Our CPU backend vs ONNX Runtime in Python, and pipeline fps vs backend fps
    Bench {
        /// Generator ONNX (default: the bundled demo).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Inference size WxH (multiples of 4).
        #[arg(long, default_value = "256x256")]
        size: String,
        #[arg(long, default_value_t = 2)]
        threads: usize,
        #[arg(long, default_value_t = 20)]
        iters: usize,
        #[arg(long, default_value_t = 5)]
        warmup: usize,
        /// Frames through the pipeline.
        #[arg(long, default_value_t = 60)]
        frames: u32,
        /// Interleaved rounds of all measurements; medians are reported.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Python with onnxruntime.
        #[arg(long, default_value = ".venv/bin/python")]
        python: PathBuf,
    },
}

fn stats_line(s: &LiveStats) -> String {
    format!(
        "{} frames | {:.1} fps | latency p50 {:.1} ms, p95 {:.1} ms | dropped {} | {}x{} on {}",
        s.frames, s.fps, s.p50_ms, s.p95_ms, s.dropped, s.inference_size.0, s.inference_size.1, s.backend
    )
}

fn run(config: Option<PathBuf>, overrides: Overrides) -> Result<()> {
    let mut cfg = match &config {
        Some(path) => EdgeConfig::from_file(path)?,
        None => EdgeConfig::default(),
    };
    overrides.apply(&mut cfg);
    let interrupt = Arc::new(AtomicBool::new(false));
    {
        let interrupt = interrupt.clone();
        ctrlc::set_handler(move || {
            if interrupt.swap(true, Ordering::SeqCst) {
                eprintln!("\nsecond Ctrl-C: stopping without finishing the output");
                std::process::exit(130);
            }
            eprintln!("\nCtrl-C: finishing the output (Ctrl-C again to abort)");
        })
        .context("installing the Ctrl-C handler")?;
    }
    let tty = std::io::stderr().is_terminal();
    let show = cfg.output.stats;
    let report = pipeline::run(&cfg, &interrupt, |event| match event {
        Event::Note(note) => eprintln!("note: {note}"),
        Event::Stats(s) if show => {
            if tty {
                eprint!("\r{}\x1b[K", stats_line(s));
            } else {
                eprintln!("{}", stats_line(s));
            }
        }
        Event::Stats(_) => {}
    })?;
    if show && tty {
        eprintln!();
    }
    let fps = report.frames as f64 / report.seconds.max(1e-9);
    eprintln!("model {}", report.model);
    println!(
        "{} -> {}: {} frames in {:.1} s ({fps:.1} fps), dropped {}{}",
        cfg.input.input,
        cfg.output.output,
        report.frames,
        report.seconds,
        report.dropped,
        if report.interrupted { ", stopped by Ctrl-C" } else { "" }
    );
    if let pipeline::Output::File(path) = pipeline::Output::parse(&cfg.output.output)? {
        let video = pipeline::decode_file(&path).with_context(|| format!("checking {}", path.display()))?;
        println!("{} plays back: {} frames of {}x{}", path.display(), video.frames, video.width, video.height);
    }
    if let Some(last) = report.last {
        println!("latency p50 {:.1} ms, p95 {:.1} ms (last second) on {}", last.p50_ms, last.p95_ms, last.backend);
    }
    Ok(())
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Run { config, overrides } => run(config, overrides),
        Command::Bench { model, size, threads, iters, warmup, frames, rounds, python } => {
            let (w, h) = match size.parse::<cyclegan_edge::preprocess::InferenceSize>()? {
                cyclegan_edge::preprocess::InferenceSize::Exact(w, h) => (w as usize, h as usize),
                _ => anyhow::bail!("--size {size}: give WxH, like 256x256"),
            };
            let opts = BenchOptions { model, size: (w, h), threads, iters, warmup, frames, rounds, python };
            let rows = bench::run(&opts)?;
            print!("{}", bench::table(&rows));
            Ok(())
        }
    }
}
