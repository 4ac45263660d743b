//! `bench streams`: N streams through one process sharing the model (frames batched) against N
//! processes of one stream each, the way cameras were run before: aggregate fps, each stream's
//! latency percentiles, and resident memory. Each side is `cyclegan-edge run` itself, as a child
//! process writing its `--report`.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::{Error, Result};

pub struct StreamsOptions {
    /// `cyclegan-edge` (the running binary).
    pub exe: PathBuf,
    pub streams: Vec<usize>,
    /// Frame size of the test patterns.
    pub size: (u32, u32),
    /// Frames per stream.
    pub frames: u64,
    /// 0: the patterns run as fast as the model takes them; else each is a live source at this
    /// rate, as cameras are.
    pub framerate: u32,
    /// Arguments for every run (`--backend cpu`, `--model ...`).
    pub run_args: Vec<String>,
    /// Arguments for the shared side's runs only (how it batches).
    pub shared_args: Vec<String>,
    /// Interleaved rounds (medians are reported): shared machines drift by tens of percent.
    pub rounds: usize,
}

/// One side of one row: the sum of the streams' fps, latency percentiles (the mean of the
/// streams' p50, the worst p95) and resident memory (summed over the processes).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Side {
    pub fps: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub rss_mb: f64,
    pub batch_mean: f64,
}

#[derive(Debug, Clone, Copy)]
pub struct StreamsRow {
    pub streams: usize,
    pub shared: Side,
    pub separate: Side,
}

/// Test patterns that differ, so that no stream's frames are another's.
const PATTERNS: [&str; 8] = ["ball", "smpte", "snow", "pinwheel", "gamut", "spokes", "circular", "zone-plate"];

pub fn run(opts: &StreamsOptions) -> Result<Vec<StreamsRow>> {
    let dir = tempfile::tempdir().map_err(|e| Error::Invalid(format!("a temporary folder: {e}")))?;
    let mut measured: Vec<(Vec<Side>, Vec<Side>)> = vec![Default::default(); opts.streams.len()];
    for _ in 0..opts.rounds.max(1) {
        for (&n, (shared, separate)) in opts.streams.iter().zip(&mut measured) {
            let inputs: Vec<String> = (0..n).map(|i| format!("test://{}", PATTERNS[i % PATTERNS.len()])).collect();
            let report = |name: String| dir.path().join(name);
            let shared_report = report(format!("shared-{n}.json"));
            let child = spawn(opts, &opts.shared_args, &inputs, &shared_report)?;
            shared.push(finish(vec![(child, shared_report)])?);
            let children: Vec<(Child, PathBuf)> = inputs
                .iter()
                .enumerate()
                .map(|(i, input)| {
                    let path = report(format!("separate-{n}-{i}.json"));
                    Ok((spawn(opts, &[], std::slice::from_ref(input), &path)?, path))
                })
                .collect::<Result<_>>()?;
            separate.push(finish(children)?);
        }
    }
    Ok(opts
        .streams
        .iter()
        .zip(measured)
        .map(|(&streams, (shared, separate))| StreamsRow {
            streams,
            shared: median(&shared),
            separate: median(&separate),
        })
        .collect())
}

/// Each figure's median over the rounds.
fn median(sides: &[Side]) -> Side {
    let of = |f: fn(&Side) -> f64| super::median(sides.iter().map(f).collect());
    Side {
        fps: of(|s| s.fps),
        p50_ms: of(|s| s.p50_ms),
        p95_ms: of(|s| s.p95_ms),
        rss_mb: of(|s| s.rss_mb),
        batch_mean: of(|s| s.batch_mean),
    }
}

fn spawn(opts: &StreamsOptions, side_args: &[String], inputs: &[String], report: &Path) -> Result<Child> {
    let mut command = Command::new(&opts.exe);
    command.arg("run").args(&opts.run_args).args(side_args);
    let (w, h) = opts.size;
    command.args(["--width", &w.to_string(), "--height", &h.to_string(), "--num-frames", &opts.frames.to_string()]);
    if opts.framerate > 0 {
        command.args(["--live", "true", "--framerate", &opts.framerate.to_string()]);
    }
    command.args(["--stats", "false", "--report"]).arg(report);
    for input in inputs {
        command.args(["--stream", input, "null://"]);
    }
    command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Invalid(format!("starting {}: {e}", opts.exe.display())))
}

/// Waits for the runs and sums them up as one side.
fn finish(runs: Vec<(Child, PathBuf)>) -> Result<Side> {
    let mut side = Side::default();
    let mut streams = 0;
    for (child, report) in runs {
        let out = child.wait_with_output().map_err(|e| Error::Invalid(format!("waiting for a run: {e}")))?;
        if !out.status.success() {
            return Err(Error::Invalid(format!(
                "a run failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let text = std::fs::read_to_string(&report)
            .map_err(|e| Error::Invalid(format!("the run's report {}: {e}", report.display())))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| Error::Invalid(format!("{}: {e}", report.display())))?;
        side.rss_mb += json["peak_rss_mb"].as_f64().unwrap_or(0.0);
        for stream in json["streams"].as_array().into_iter().flatten() {
            let segment = &stream["segments"][0];
            let number = |key: &str| {
                segment[key].as_f64().ok_or_else(|| Error::Invalid(format!("{}: no {key}", report.display())))
            };
            side.fps += number("fps")?;
            side.p50_ms += number("latency_p50_ms")?;
            side.p95_ms = side.p95_ms.max(number("latency_p95_ms")?);
            side.batch_mean += segment["batch_mean"].as_f64().unwrap_or(1.0);
            streams += 1;
        }
    }
    side.p50_ms /= streams.max(1) as f64;
    side.batch_mean /= streams.max(1) as f64;
    Ok(side)
}

/// The table `bench streams` prints (Markdown): each row's shared side against the separate
/// processes, with the targets: memory at most 0.4x, fps at least 1.0x, and p95 latency at most
/// 1.5x that of one stream alone (the first row when it is 1 stream).
pub fn table(rows: &[StreamsRow]) -> String {
    let alone = rows.iter().find(|r| r.streams == 1).map(|r| r.shared.p95_ms);
    let mut out = String::from(
        "| streams | fps shared / separate (ratio, >= 1.0) | p50 ms shared / separate | p95 ms shared / separate \
         (vs 1 stream, <= 1.5) | memory MB shared / separate (ratio, <= 0.4) | mean batch |\n",
    );
    out.push_str("|---|---|---|---|---|---|\n");
    for r in rows {
        let (s, p) = (&r.shared, &r.separate);
        let vs_one = alone.map_or_else(|| "-".into(), |a| format!("{:.2}x", s.p95_ms / a));
        out.push_str(&format!(
            "| {} | {:.1} / {:.1} ({:.2}x) | {:.1} / {:.1} | {:.1} / {:.1} ({vs_one}) | {:.0} / {:.0} ({:.2}x) | {:.2} |\n",
            r.streams,
            s.fps,
            p.fps,
            s.fps / p.fps.max(1e-9),
            s.p50_ms,
            p.p50_ms,
            s.p95_ms,
            p.p95_ms,
            s.rss_mb,
            p.rss_mb,
            s.rss_mb / p.rss_mb.max(1e-9),
            s.batch_mean
        ));
    }
    out
}
