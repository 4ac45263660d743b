//! Symmetric INT8 scales: activations per tensor from a histogram of |x| (the smallest expected
//! squared error, min-max, percentile, or TensorRT's KL-divergence calibrator), weights per
//! output channel; and the INT8 quantizer they are for.
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// Histogram bins over [0, amax], as TensorRT's entropy calibrator.
pub const BINS: usize = 2048;
/// Positive INT8 levels of a symmetric quantizer.
pub const LEVELS: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    /// TensorRT's entropy calibrator (EntropyCalibration2): the threshold whose 128-level
    /// quantization of the 2048-bin histogram diverges least (KL) from it. It matches the
    /// distribution's shape, not the values, and clips the tails that carry a generator's
    /// highlights and shadows; kept to reproduce what TensorRT's implicit INT8 would pick.
    TrtEntropy,
    /// The threshold with the smallest expected squared quantize-dequantize error.
    Mse,
    /// The given percentile of |x| (e.g. 99.99).
    Percentile(f64),
    MinMax,
}

impl FromStr for Method {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "trt-entropy" => Ok(Self::TrtEntropy),
            "entropy" => Err(Error::Invalid(
                "--method entropy: TensorRT's KL calibrator is `trt-entropy`, and it clips what generators need \
                 (docs/calibration.md); use mse (the default), minmax, or trt-entropy"
                    .into(),
            )),
            "mse" => Ok(Self::Mse),
            "minmax" => Ok(Self::MinMax),
            "percentile" => Ok(Self::Percentile(99.99)),
            _ => match s.strip_prefix("percentile:").and_then(|p| p.parse::<f64>().ok()) {
                Some(p) if p > 0.0 && p <= 100.0 => Ok(Self::Percentile(p)),
                _ => Err(Error::Invalid(format!(
                    "--method {s}: use mse, minmax, percentile (99.99), percentile:P (0 < P <= 100) or trt-entropy"
                ))),
            },
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TrtEntropy => write!(f, "trt-entropy"),
            Self::Mse => write!(f, "mse"),
            Self::Percentile(p) => write!(f, "percentile:{p}"),
            Self::MinMax => write!(f, "minmax"),
        }
    }
}

/// Counts of |x| in [`BINS`] equal bins over [0, amax].
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub amax: f32,
    pub counts: Vec<u64>,
}

impl Histogram {
    pub fn new(amax: f32) -> Self {
        Self { amax, counts: vec![0; BINS] }
    }

    pub fn width(&self) -> f32 {
        self.amax / BINS as f32
    }

    pub fn add(&mut self, values: &[f32]) {
        if self.amax <= 0.0 {
            self.counts[0] += values.len() as u64;
            return;
        }
        let scale = BINS as f32 / self.amax;
        for v in values {
            let bin = ((v.abs() * scale) as usize).min(BINS - 1);
            self.counts[bin] += 1;
        }
    }

    /// The clipping threshold `method` picks.
    pub fn threshold(&self, method: Method) -> f32 {
        match method {
            Method::MinMax => self.amax,
            Method::Percentile(p) => percentile_threshold(&self.counts, self.width(), p),
            Method::TrtEntropy => entropy_threshold(&self.counts, self.width()),
            Method::Mse => mse_threshold(&self.counts, self.width()),
        }
    }

    /// Expected squared error per value of quantizing with `threshold` ([`quantization_mse`]).
    pub fn quantization_mse(&self, threshold: f32) -> f64 {
        quantization_mse(&self.counts, self.width(), threshold)
    }

    /// Signal-to-quantization-noise ratio (dB) with `threshold`: E[x²] over the expected squared
    /// error, both under the histogram's model; 100 dB when quantization is exact.
    pub fn sqnr_db(&self, threshold: f32) -> f64 {
        let moments = Moments::new(&self.counts);
        let [n, _, square] = moments.at(&self.counts, self.counts.len() as f64);
        let w = self.width() as f64;
        let (signal, noise) = (square * w * w / n.max(1.0), self.quantization_mse(threshold));
        if noise <= signal * 1e-10 { 100.0 } else { 10.0 * (signal / noise).log10() }
    }
}

/// The upper edge of the first bin where the cumulative count reaches `p` percent.
pub fn percentile_threshold(counts: &[u64], width: f32, p: f64) -> f32 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let target = total as f64 * p / 100.0;
    let mut cumulative = 0u64;
    for (k, c) in counts.iter().enumerate() {
        cumulative += c;
        if cumulative as f64 >= target {
            return (k + 1) as f32 * width;
        }
    }
    counts.len() as f32 * width
}

/// Moves a little mass onto empty bins so KL(p||q) stays finite (the usual smoothing of
/// KL-based calibrators); `None` when the distribution is empty.
fn smooth(d: &mut [f64]) -> Option<()> {
    const EPS: f64 = 1e-4;
    let zeros = d.iter().filter(|v| **v == 0.0).count();
    let nonzeros = d.len() - zeros;
    if nonzeros == 0 {
        return None;
    }
    let take = EPS * zeros as f64 / nonzeros as f64;
    for v in d.iter_mut() {
        *v = if *v == 0.0 { EPS } else { (*v - take).max(EPS * 0.01) };
    }
    Some(())
}

/// TensorRT's entropy calibration: for every candidate of `i` bins (128 up to all of them), the
/// reference distribution P is the first `i` bins with everything beyond folded into the last;
/// Q is those `i` bins quantized to 128 levels and expanded back (each level's count spread over
/// its non-empty bins). The threshold is `(i + 0.5) * width` for the `i` with the smallest
/// KL(P||Q).
pub fn entropy_threshold(counts: &[u64], width: f32) -> f32 {
    let n = counts.len();
    let last_nonzero = match counts.iter().rposition(|c| *c > 0) {
        Some(k) => k,
        None => return 0.0,
    };
    let mut best = (f64::INFINITY, n);
    for i in LEVELS..=n {
        let mut p: Vec<f64> = counts[..i].iter().map(|c| *c as f64).collect();
        p[i - 1] += counts[i..].iter().sum::<u64>() as f64;
        let mut q = vec![0f64; i];
        let merged = i / LEVELS;
        for level in 0..LEVELS {
            let start = level * merged;
            let end = if level == LEVELS - 1 { i } else { start + merged };
            let bins = &counts[start..end];
            let nonzero = bins.iter().filter(|c| **c > 0).count();
            if nonzero == 0 {
                continue;
            }
            let each = bins.iter().sum::<u64>() as f64 / nonzero as f64;
            for (k, c) in bins.iter().enumerate() {
                if *c > 0 {
                    q[start + k] = each;
                }
            }
        }
        let (sp, sq) = (p.iter().sum::<f64>(), q.iter().sum::<f64>());
        if sq == 0.0 {
            continue;
        }
        p.iter_mut().for_each(|v| *v /= sp);
        q.iter_mut().for_each(|v| *v /= sq);
        if smooth(&mut p).is_none() || smooth(&mut q).is_none() {
            continue;
        }
        let kl: f64 = p.iter().zip(&q).map(|(a, b)| a * (a / b).ln()).sum();
        // Ties (exact quantization) go to the smallest threshold that keeps every value.
        if kl < best.0 - 1e-12 {
            best = (kl, i);
        }
        // Past the last non-empty bin, wider ranges only add empty bins.
        if i > last_nonzero + 1 {
            break;
        }
    }
    (best.1 as f32 + 0.5) * width
}

/// Integrals of the histogram's density (uniform within each bin; positions `u` in bins) from
/// 0 to each bin edge: mass, first and second moment.
struct Moments {
    edges: Vec<[f64; 3]>,
}

impl Moments {
    fn new(counts: &[u64]) -> Self {
        let mut edges = Vec::with_capacity(counts.len() + 1);
        let mut acc = [0f64; 3];
        edges.push(acc);
        for (k, c) in counts.iter().enumerate() {
            let (n, k) = (*c as f64, k as f64);
            acc[0] += n;
            acc[1] += n * (k + 0.5);
            acc[2] += n * (k * k + k + 1.0 / 3.0);
            edges.push(acc);
        }
        Self { edges }
    }

    /// The three integrals from 0 to `u` (clamped to the histogram).
    fn at(&self, counts: &[u64], u: f64) -> [f64; 3] {
        let u = u.clamp(0.0, counts.len() as f64);
        let k = (u as usize).min(counts.len() - 1);
        let (n, kf) = (counts[k] as f64, k as f64);
        let [m0, m1, m2] = self.edges[k];
        [m0 + n * (u - kf), m1 + n * (u * u - kf * kf) / 2.0, m2 + n * (u * u * u - kf * kf * kf) / 3.0]
    }

    /// Sum of (x - q(x))² over the histogram for step `s` (in bins), `q` rounding to the nearest
    /// of the levels `j s`, `0 <= j < LEVELS`, and saturating at the last: the positive half of
    /// symmetric INT8 quantize-dequantize (the histogram folds the sign, so the extra negative
    /// level -128 is not used).
    fn squared_error(&self, counts: &[u64], s: f64) -> f64 {
        let end = counts.len() as f64;
        let mut total = 0.0;
        let mut lo = self.at(counts, 0.0);
        for j in 0..LEVELS {
            let level = j as f64 * s;
            let edge = if j == LEVELS - 1 { end } else { level + s / 2.0 };
            let hi = self.at(counts, edge);
            total += (hi[2] - lo[2]) - 2.0 * level * (hi[1] - lo[1]) + level * level * (hi[0] - lo[0]);
            if edge >= end {
                break;
            }
            lo = hi;
        }
        total.max(0.0)
    }
}

/// The expected squared error per value of symmetric INT8 quantize-dequantize with clipping
/// threshold `threshold` (scale `threshold / 127`): rounding error inside, `(|x| - threshold)²`
/// beyond; values uniform within each bin.
pub fn quantization_mse(counts: &[u64], width: f32, threshold: f32) -> f64 {
    let total: u64 = counts.iter().sum();
    if total == 0 || width <= 0.0 {
        return 0.0;
    }
    let w = width as f64;
    let s = threshold as f64 / w / (LEVELS - 1) as f64;
    Moments::new(counts).squared_error(counts, s) * w * w / total as f64
}

/// The threshold with the smallest [`quantization_mse`] on a grid of half bins, `k * width / 2`
/// for `k` = 1 up to `2 * bins`: it holds min-max (the last), every bin edge (percentiles) and
/// every bin centre (entropy's thresholds but its widest, half a bin past the maximum), so the
/// error never exceeds theirs. Ties go to the smallest threshold.
pub fn mse_threshold(counts: &[u64], width: f32) -> f32 {
    if counts.iter().all(|c| *c == 0) || width <= 0.0 {
        return 0.0;
    }
    let moments = Moments::new(counts);
    let mut best = (f64::INFINITY, 0usize);
    for k in 1..=2 * counts.len() {
        let s = k as f64 / 2.0 / (LEVELS - 1) as f64;
        let e = moments.squared_error(counts, s);
        if e < best.0 * (1.0 - 1e-12) {
            best = (e, k);
        }
    }
    best.1 as f32 * width / 2.0
}

/// Per-channel symmetric scales `max|w| / 127` along `axis` of a weight of shape `dims`.
pub fn weight_scales(weights: &[f32], dims: &[i64], axis: usize) -> Vec<f32> {
    let channels = dims[axis] as usize;
    let inner: usize = dims[axis + 1..].iter().product::<i64>() as usize;
    let mut amax = vec![0f32; channels];
    for (i, w) in weights.iter().enumerate() {
        let c = (i / inner) % channels;
        amax[c] = amax[c].max(w.abs());
    }
    amax.into_iter().map(scale_of).collect()
}

/// The smallest scale: a channel or tensor that is all zeros still gets a usable one.
pub const MIN_SCALE: f32 = f32::MIN_POSITIVE * 1e3;

/// The scale for a clipping threshold (symmetric INT8: the threshold maps to 127).
pub fn scale_of(threshold: f32) -> f32 {
    (threshold / 127.0).max(MIN_SCALE)
}

/// ONNX QuantizeLinear's rounding (half to even) and saturation: the quantizer these scales are
/// for, which the Q/DQ rewrite applies to weights and the tests below measure.
pub fn quantize(v: f32, scale: f32) -> i8 {
    (v / scale).round_ties_even().clamp(-128.0, 127.0) as i8
}

/// Each tensor's scale as `method` chooses it from the tensor's histogram.
pub fn observed(hist: &BTreeMap<String, Histogram>, method: Method) -> BTreeMap<String, f32> {
    hist.iter().map(|(n, h)| (n.clone(), scale_of(h.threshold(method)))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_of_a_uniform_histogram() {
        // 1000 equally filled bins of width 0.01: 99.9 % of the mass lies below bin 999's edge.
        let mut counts = vec![0u64; BINS];
        counts[..1000].fill(50);
        assert_eq!(percentile_threshold(&counts, 0.01, 99.9), 999.0 * 0.01);
        assert_eq!(percentile_threshold(&counts, 0.01, 100.0), 1000.0 * 0.01);
        assert_eq!(percentile_threshold(&counts, 0.01, 50.0), 500.0 * 0.01);
    }

    #[test]
    fn entropy_keeps_a_uniform_range_whole() {
        // Uniform over the first 1000 bins: Q reproduces P exactly from i = 1000 on, and any
        // smaller i folds real mass into the last bin. The threshold is 1000.5 bins.
        let mut counts = vec![0u64; BINS];
        counts[..1000].fill(1000);
        assert_eq!(entropy_threshold(&counts, 0.5), 1000.5 * 0.5);
    }

    #[test]
    fn entropy_clips_a_long_thin_tail() {
        // Laplace-like |x|: most mass near zero, a tail to the last bin. Min-max would spend the
        // 127 levels on the tail; entropy clips well inside it but keeps nearly all the mass.
        let counts: Vec<u64> = (0..BINS).map(|k| (1e7 * (-(k as f64) / 60.0).exp()) as u64 + 1).collect();
        let h = Histogram { amax: BINS as f32, counts };
        let t = h.threshold(Method::TrtEntropy);
        assert!(t > 128.0 && t < 1000.0, "{t}");
        let kept = percentile_threshold(&h.counts, 1.0, 99.0);
        assert!(t >= kept, "entropy threshold {t} below the 99th percentile {kept}");
        assert_eq!(h.threshold(Method::MinMax), BINS as f32);
    }

    /// |x| of `n` deterministic draws: Laplace(0, 1) or standard normal (xorshift64*).
    fn samples(n: usize, laplace: bool) -> Vec<f32> {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut uniform = move || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            ((state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| {
                let u = uniform();
                let x =
                    if laplace { -u.ln() } else { (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * uniform()).cos() };
                x.abs() as f32
            })
            .collect()
    }

    fn histogram_of(values: &[f32]) -> Histogram {
        let mut h = Histogram::new(values.iter().fold(0f32, |a, v| a.max(*v)));
        h.add(values);
        h
    }

    /// The real thing: mean squared error of ONNX QuantizeLinear/DequantizeLinear on the values.
    fn brute_force_mse(values: &[f32], threshold: f32) -> f64 {
        let s = threshold / 127.0;
        values.iter().map(|v| (*v as f64 - (quantize(*v, s) as f32 * s) as f64).powi(2)).sum::<f64>()
            / values.len() as f64
    }

    #[test]
    fn mse_threshold_beats_min_max_and_entropy_on_gaussian_and_laplacian_data() {
        for laplace in [false, true] {
            let values = samples(200_000, laplace);
            let h = histogram_of(&values);
            let (mse, entropy, minmax) =
                (h.threshold(Method::Mse), h.threshold(Method::TrtEntropy), h.threshold(Method::MinMax));
            assert!(mse < 0.9 * minmax, "laplace {laplace}: mse {mse}, max {minmax}");
            for t in [mse, entropy, minmax, h.threshold(Method::Percentile(99.99))] {
                let (model, brute) = (h.quantization_mse(t), brute_force_mse(&values, t));
                assert!((model - brute).abs() <= 0.02 * brute, "laplace {laplace}, t {t}: {model} vs {brute}");
            }
            // The search's own error, and the error of the values themselves.
            assert!(h.quantization_mse(mse) <= h.quantization_mse(entropy));
            assert!(h.quantization_mse(mse) <= h.quantization_mse(minmax));
            assert!(brute_force_mse(&values, mse) < brute_force_mse(&values, entropy), "laplace {laplace}");
            assert!(brute_force_mse(&values, mse) < brute_force_mse(&values, minmax), "laplace {laplace}");
            assert!(h.sqnr_db(mse) > h.sqnr_db(minmax));
        }
    }

    #[test]
    fn mse_search_finds_the_grid_minimum_of_a_direct_integration() {
        // The histogram's model integrated numerically (64 points per bin) at every fourth grid
        // threshold from 128 bins up: the closed form agrees and the search finds the minimum.
        let h = histogram_of(&samples(100_000, true));
        let w = h.width() as f64;
        let direct = |t: f64| -> f64 {
            let s = t / 127.0;
            let mut sum = 0.0;
            for (k, c) in h.counts.iter().enumerate().filter(|(_, c)| **c > 0) {
                for i in 0..64 {
                    let x = (k as f64 + (i as f64 + 0.5) / 64.0) * w;
                    sum += *c as f64 / 64.0 * (x - (x / s).round().min(127.0) * s).powi(2);
                }
            }
            sum / h.counts.iter().sum::<u64>() as f64
        };
        let mut best = (f64::INFINITY, 0.0);
        for k in (256..=2 * BINS).step_by(4) {
            let t = k as f64 * w / 2.0;
            let (closed, numeric) = (h.quantization_mse(t as f32), direct(t));
            assert!((closed - numeric).abs() <= 1e-3 * numeric, "t {t}: {closed} vs {numeric}");
            if numeric < best.0 {
                best = (numeric, t);
            }
        }
        let chosen = h.threshold(Method::Mse);
        assert!(h.quantization_mse(chosen) <= best.0 * (1.0 + 1e-3), "{chosen} vs {}", best.1);
        assert!((chosen as f64 - best.1).abs() <= 0.05 * best.1, "{chosen} vs {}", best.1);
    }

    #[test]
    fn mse_keeps_a_uniform_range_nearly_whole_and_handles_empty_histograms() {
        // Uniform over 1000 bins: clipping costs more than the finer step saves, except at the
        // very edge.
        let mut counts = vec![0u64; BINS];
        counts[..1000].fill(1000);
        let t = mse_threshold(&counts, 1.0);
        assert!(t > 985.0 && t <= 1000.0, "{t}");
        assert_eq!(mse_threshold(&[0; BINS], 1.0), 0.0);
        assert_eq!(Histogram::new(0.0).threshold(Method::Mse), 0.0);
        assert_eq!("mse".parse::<Method>().unwrap(), Method::Mse);
        assert_eq!(Method::Mse.to_string(), "mse");
        assert!("mse:3".parse::<Method>().unwrap_err().to_string().contains("mse, minmax, percentile"));
        assert_eq!("trt-entropy".parse::<Method>().unwrap().to_string(), "trt-entropy");
        assert!("entropy".parse::<Method>().unwrap_err().to_string().contains("is `trt-entropy`"));
    }

    #[test]
    fn weight_scales_per_output_channel_for_conv_and_conv_transpose() {
        // Conv [Cout=2, Cin=1, 1, 2]: channel 0 = {1, -3}, channel 1 = {0.5, 2}.
        let w = [1.0, -3.0, 0.5, 2.0];
        assert_eq!(weight_scales(&w, &[2, 1, 1, 2], 0), vec![3.0 / 127.0, 2.0 / 127.0]);
        // ConvTranspose [Cin=2, Cout=2, 1, 1]: output channel 0 = {w[0], w[2]}, 1 = {w[1], w[3]}.
        assert_eq!(weight_scales(&w, &[2, 2, 1, 1], 1), vec![1.0 / 127.0, 3.0 / 127.0]);
        assert!(weight_scales(&[0.0, 0.0], &[2, 1, 1, 1], 0).iter().all(|s| *s > 0.0));
    }

    #[test]
    fn histogram_bins_absolute_values() {
        let mut h = Histogram::new(2.0);
        h.add(&[0.0, -0.0009, 1.0, -1.0, 2.0, 5.0]);
        assert_eq!(h.counts[0], 2);
        assert_eq!(h.counts[1024], 2);
        assert_eq!(h.counts[BINS - 1], 2);
        assert_eq!("percentile:99.9".parse::<Method>().unwrap(), Method::Percentile(99.9));
        assert!("percentile:0".parse::<Method>().is_err());
    }
}
