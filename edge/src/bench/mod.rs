//! Benchmarks that print a table, ours against a peer: `speed` (our CPU backend against ONNX
//! Runtime in Python, the pipeline against the backend alone), `int8` (FP16 and INT8 against FP32
//! on this backend), `temporal` (flicker per temporal-smoothing value), `kernels` (the CUDA frame
//! kernels against the GPU's own copy), `streams` (streams sharing one model against a process
//! each).
pub mod int8;
pub mod kernels;
#[cfg(feature = "gst")]
pub mod speed;
pub mod streams;
pub mod temporal;

use std::path::PathBuf;
use std::time::Instant;

use crate::Result;
use crate::backend::Backend;
use crate::stats::percentile;

/// What every measurement of the backend takes.
pub struct BenchOptions {
    pub model: Option<PathBuf>,
    /// Inference (and frame) size.
    pub size: (usize, usize),
    pub threads: usize,
    pub iters: usize,
    pub warmup: usize,
    /// Interleaved measurement rounds (medians are reported): shared machines drift by tens of
    /// percent over a minute.
    pub rounds: usize,
}

#[derive(Debug, Clone)]
pub struct Row {
    pub measure: String,
    pub ours: f64,
    pub peer_name: String,
    pub peer: f64,
    /// Ours relative to the peer, higher is better.
    pub ratio: f64,
    /// What the ratio should reach, where there is a target.
    pub target: Option<f64>,
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    percentile(&v, 0.5)
}

/// Milliseconds per frame of the backend alone (median).
pub(crate) fn backend_ms(backend: &mut dyn Backend, size: (usize, usize), iters: usize, warmup: usize) -> Result<f64> {
    let shape = [1, 3, size.1, size.0];
    let input: Vec<f32> = (0..3 * size.0 * size.1).map(|i| ((i * 7919) % 2000) as f32 / 1000.0 - 1.0).collect();
    let mut output = Vec::new();
    for _ in 0..warmup {
        backend.run(&input, shape, &mut output)?;
    }
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        backend.run(&input, shape, &mut output)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(median(times))
}

/// Runs `measure` in `opts.rounds` interleaved rounds, stopping at the first error.
pub(crate) fn rounds(opts: &BenchOptions, mut measure: impl FnMut() -> Result<()>) -> Result<()> {
    (0..opts.rounds.max(1)).try_for_each(|_| measure())
}

/// The table `cyclegan-edge bench speed` and `bench int8` print (Markdown).
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from("| measure | ours | peer | peer value | ratio (ours/peer speed) | target |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for r in rows {
        let target = match r.target {
            Some(t) => format!(">= {t:.2} {}", if r.ratio >= t { "(met)" } else { "(missed)" }),
            None => "-".into(),
        };
        out.push_str(&format!(
            "| {} | {:.2} | {} | {:.2} | {:.2} | {target} |\n",
            r.measure, r.ours, r.peer_name, r.peer, r.ratio
        ));
    }
    out
}
