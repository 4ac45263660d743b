//! `run`: a video stream through the generator, with live statistics, as a configuration and
//! flags describe it.
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use cyclegan_edge::config::{EdgeConfig, Overrides};
use cyclegan_edge::pipeline::{self, Event, LiveStats};
use cyclegan_edge::pretrained::{self, Fetch};

#[derive(clap::Args)]
pub struct RunArgs {
    /// TOML pipeline description (configs/edge/*.toml); flags override its fields.
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    overrides: Overrides,
}

fn stats_line(s: &LiveStats) -> String {
    let device = match (s.device_ms, s.copied_bytes) {
        (Some(ms), Some(bytes)) => format!(" (GPU {ms:.1} ms, {:.1} MB copied)", bytes as f64 / 1e6),
        (Some(ms), None) => format!(" (GPU {ms:.1} ms)"),
        _ => String::new(),
    };
    format!(
        "{} frames | {:.1} fps | latency p50 {:.1} ms, p95 {:.1} ms{device} | dropped {} | {}x{} on {}",
        s.frames, s.fps, s.p50_ms, s.p95_ms, s.dropped, s.inference_size.0, s.inference_size.1, s.backend
    )
}

pub fn run(args: RunArgs) -> Result<()> {
    let RunArgs { config, overrides } = args;
    let mut cfg = match &config {
        Some(path) => EdgeConfig::from_file(path)?,
        None => EdgeConfig::default(),
    };
    overrides.apply(&mut cfg);
    // A published generator is fetched here, with progress, before the pipeline reads the cache.
    if let Some(model) = &cfg.inference.model {
        pretrained::resolve(model, Some(&Fetch { progress: true, ..Fetch::default() }))?;
    }
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
    match report.lost {
        Some(why) => Err(cyclegan_edge::Error::InputUnavailable(format!(
            "{why}; the output holds the {} frames before",
            report.frames
        ))
        .into()),
        None => Ok(()),
    }
}
