//! `run`: a video stream through the generator, with live statistics, as a configuration and
//! flags describe it.
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use cyclegan_edge::config::{EdgeConfig, Overrides};
use cyclegan_edge::pipeline::{self, Event, LiveStats, RunReport, StreamOutcome};
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
    let shared = match (s.shared_by, s.batch_mean) {
        (Some(n), Some(mean)) if n > 1 => format!(" | batches of {mean:.1}, model shared by {n} streams"),
        _ => String::new(),
    };
    format!(
        "{} frames | {:.1} fps | latency p50 {:.1} ms, p95 {:.1} ms{device} | dropped {} | {}x{} on {}{shared}",
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
    let several = cfg.streams().len() > 1;
    // One stream's line is redrawn in place on a terminal; several streams' lines follow each other.
    let redraw = std::io::stderr().is_terminal() && !several;
    let label = |i: usize| if several { format!("[{}] ", i + 1) } else { String::new() };
    let show = cfg.output.stats;
    let streams = pipeline::run_streams(&cfg, &interrupt, |i, event| match event {
        Event::Note(note) => eprintln!("{}note: {note}", label(i)),
        Event::Stats(s) if show => {
            if redraw {
                eprint!("\r{}\x1b[K", stats_line(s));
            } else {
                eprintln!("{}{}", label(i), stats_line(s));
            }
        }
        Event::Stats(_) => {}
    })?;
    if show && redraw {
        eprintln!();
    }
    let outcomes = streams.outcomes;
    if let Some((_, report)) = outcomes.iter().find_map(|o| o.segments.first()) {
        eprintln!("model {}", report.model);
    }
    if let Some(path) = &cfg.output.report {
        write_report(path, &outcomes)?;
    }
    let mut failed = None;
    for (i, outcome) in outcomes.into_iter().enumerate() {
        for (output, report) in &outcome.segments {
            summarize(&label(i), &outcome.stream.input, output, report)?;
        }
        let Some(e) = outcome.error else { continue };
        let frames: u64 = outcome.segments.iter().map(|(_, r)| r.frames).sum();
        let e = match e {
            cyclegan_edge::Error::InputUnavailable(why) if frames > 0 => {
                cyclegan_edge::Error::InputUnavailable(format!("{why}; the output holds the {frames} frames before"))
            }
            e => e,
        };
        let e = anyhow::Error::from(e);
        if several {
            eprintln!("{}error: {e:#}", label(i));
        }
        failed.get_or_insert(if several {
            e.context(format!("stream {} ({})", i + 1, outcome.stream.input))
        } else {
            e
        });
    }
    match streams.mosaic {
        Some(Ok(mosaic)) => {
            if let pipeline::Output::File(path) = pipeline::Output::parse(&mosaic)? {
                let video = pipeline::decode_file(&path).with_context(|| format!("checking {}", path.display()))?;
                println!(
                    "mosaic {} plays back: {} frames of {}x{}",
                    path.display(),
                    video.frames,
                    video.width,
                    video.height
                );
            }
        }
        Some(Err(e)) => {
            failed.get_or_insert(anyhow::Error::from(e));
        }
        None => {}
    }
    failed.map_or(Ok(()), Err)
}

/// The lines of one segment of a stream: frames, whether the file plays back, latency.
fn summarize(label: &str, input: &str, output: &str, report: &RunReport) -> Result<()> {
    let fps = report.frames as f64 / report.seconds.max(1e-9);
    println!(
        "{label}{input} -> {output}: {} frames in {:.1} s ({fps:.1} fps), dropped {}{}",
        report.frames,
        report.seconds,
        report.dropped,
        if report.interrupted { ", stopped by Ctrl-C" } else { "" }
    );
    if let pipeline::Output::File(path) = pipeline::Output::parse(output)? {
        let video = pipeline::decode_file(&path).with_context(|| format!("checking {}", path.display()))?;
        println!("{label}{} plays back: {} frames of {}x{}", path.display(), video.frames, video.width, video.height);
    }
    if let (Some(p50), Some(p95), Some(last)) = (report.latency_p50_ms, report.latency_p95_ms, &report.last) {
        let shared = match (last.shared_by, report.batch_mean) {
            (Some(n), Some(mean)) if n > 1 => format!(", batches of {mean:.1} frames, model shared by {n} streams"),
            _ => String::new(),
        };
        println!("{label}latency p50 {p50:.1} ms, p95 {p95:.1} ms on {}{shared}", last.backend);
    }
    Ok(())
}

/// `--report`: the run as JSON, written whole or not at all.
fn write_report(path: &Path, outcomes: &[StreamOutcome]) -> Result<()> {
    let streams: Vec<_> = outcomes
        .iter()
        .map(|o| {
            let segments: Vec<_> = o
                .segments
                .iter()
                .map(|(output, r)| {
                    serde_json::json!({
                        "output": output,
                        "frames": r.frames,
                        "seconds": r.seconds,
                        "fps": r.frames as f64 / r.seconds.max(1e-9),
                        "dropped": r.dropped,
                        "latency_p50_ms": r.latency_p50_ms,
                        "latency_p95_ms": r.latency_p95_ms,
                        "batch_mean": r.batch_mean,
                        "lost": r.lost,
                    })
                })
                .collect();
            let error = o.error.as_ref().map(|e| cyclegan_runtime::chain(e));
            serde_json::json!({ "input": o.stream.input, "segments": segments, "error": error })
        })
        .collect();
    let report = serde_json::json!({ "streams": streams, "peak_rss_mb": peak_rss_mb() });
    let partial = path.with_extension("json.partial");
    std::fs::write(&partial, serde_json::to_string_pretty(&report)? + "\n")
        .and_then(|()| std::fs::rename(&partial, path))
        .with_context(|| format!("--report {}: cannot write it", path.display()))
}

/// The process's peak resident memory (VmHWM), in MB.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
