//! Frame timing over a window: frames per second and latency percentiles.
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Frames in the window.
    pub frames: u64,
    pub fps: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    /// Mean frames per inference of the frames that ran batched with other streams' ones.
    pub batch_mean: Option<f64>,
}

#[derive(Debug)]
pub struct Window {
    started: Instant,
    latencies: Vec<Duration>,
    /// (frames, batches) of the batch sizes recorded.
    batches: (u64, u64),
}

impl Default for Window {
    fn default() -> Self {
        Self { started: Instant::now(), latencies: Vec::new(), batches: (0, 0) }
    }
}

/// The `q` quantile (0..=1) of sorted values, nearest rank.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Window {
    pub fn record(&mut self, latency: Duration) {
        self.latencies.push(latency);
    }

    /// A frame ran in a batch of `frames`.
    pub fn record_batch(&mut self, frames: usize) {
        self.batches.0 += frames as u64;
        self.batches.1 += 1;
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Summarises the window and starts a new one.
    pub fn take(&mut self) -> Summary {
        let elapsed = self.started.elapsed().as_secs_f64();
        let mut ms: Vec<f64> = self.latencies.drain(..).map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        self.started = Instant::now();
        let (frames, batches) = std::mem::take(&mut self.batches);
        Summary {
            batch_mean: (batches > 0).then(|| frames as f64 / batches as f64),
            frames: ms.len() as u64,
            fps: if elapsed > 0.0 { ms.len() as f64 / elapsed } else { 0.0 },
            p50_ms: percentile(&ms, 0.5),
            p95_ms: percentile(&ms, 0.95),
        }
    }
}

/// Latencies of a whole run in constant memory: counts in bins 1 % wide from 10 µs up (a run
/// may last days), so percentiles are read to 1 %.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
}

/// The lowest latency binned apart, and the ratio between bins.
const FIRST_MS: f64 = 0.01;
const RATIO: f64 = 1.01;
/// Bins up to 10 minutes (longer ones share the last bin).
const BINS: usize = 2700;

impl Default for Histogram {
    fn default() -> Self {
        Self { counts: vec![0; BINS] }
    }
}

impl Histogram {
    pub fn record(&mut self, latency: Duration) {
        let ms = latency.as_secs_f64() * 1e3;
        let bin = if ms <= FIRST_MS { 0 } else { ((ms / FIRST_MS).ln() / RATIO.ln()).ceil() as usize };
        self.counts[bin.min(BINS - 1)] += 1;
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The `q` quantile (0..=1) in milliseconds, nearest rank, as the upper edge of its bin; None
    /// before any is recorded.
    pub fn percentile_ms(&self, q: f64) -> Option<f64> {
        let count = self.count();
        let rank = ((q * count as f64).ceil() as u64).clamp(1, count.max(1));
        let mut seen = 0;
        self.counts
            .iter()
            .position(|&c| {
                seen += c;
                seen >= rank && count > 0
            })
            .map(|bin| FIRST_MS * RATIO.powi(bin as i32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_percentiles_are_within_a_percent_of_the_exact_ones() {
        let mut h = Histogram::default();
        assert_eq!(h.percentile_ms(0.5), None);
        let values: Vec<f64> = (1..=1000).map(|i| 0.05 * i as f64 * (1.0 + (i % 7) as f64)).collect();
        for &ms in &values {
            h.record(Duration::from_secs_f64(ms / 1e3));
        }
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        for q in [0.5, 0.95, 1.0] {
            let (exact, binned) = (percentile(&sorted, q), h.percentile_ms(q).unwrap());
            assert!(binned >= exact * 0.999 && binned <= exact * 1.011, "q {q}: {binned} vs {exact}");
        }
        assert_eq!(h.count(), 1000);
        h.record(Duration::from_secs(3600));
        assert!(h.percentile_ms(1.0).unwrap() > 5e5);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.95), 95.0);
        assert_eq!(percentile(&[7.0], 0.95), 7.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        let mut w = Window::default();
        for i in 1..=20 {
            w.record(Duration::from_millis(i));
        }
        let s = w.take();
        assert_eq!((s.frames, s.p50_ms, s.p95_ms), (20, 10.0, 19.0));
        assert_eq!(w.take().frames, 0);
        assert_eq!(s.batch_mean, None);
        w.record_batch(3);
        w.record_batch(2);
        assert_eq!(w.take().batch_mean, Some(2.5));
        assert_eq!(w.take().batch_mean, None);
    }
}
