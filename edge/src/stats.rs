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

#[cfg(test)]
mod tests {
    use super::*;

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
