//! Temporal smoothing: a generator translates each frame on its own, so a still scene flickers
//! on live video. [`Smoother`] blends the previous output into the current one where the *input*
//! did not change, gated per pixel by the input's luma change (no optical flow), so that moving
//! things leave no trail.
//!
//! With smoothing `s` (0 to 1) the previous output's weight where the input is still is
//! `w = (1 - (1-s)²) / (1 + (1-s)²)` ([`weight`]). An exponential moving average with weight `w`
//! scales the variance of temporally independent noise by `(1-w)/(1+w) = (1-s)²`, so the
//! still-scene flicker of the smoothed value `v` (its temporal standard deviation) is scaled by
//! `1 - s`: 0.5 halves it. Per pixel and channel, with `y` this frame's translation:
//!
//! `v_t = g·w·v_{t-1} + (1 - g·w)·y_t`
//!
//! where the gate `g` is 1 where the input is still and 0 where it changed: the mean absolute
//! change of the input's luma over a 5x5 window ([`RADIUS`]), 1 up to [`GATE_OPEN`] levels (of
//! 255), 0 from [`GATE_CLOSED`], linear between.
//!
//! The frame shows `v_t` in 8 bits, with a dead band where it was blended (`g·w > 0`): the level
//! shown before stays while `v_t` is within [`HOLD`] of it, else `v_t` rounded. Plain rounding
//! would toggle between two levels wherever the smoothed value hovers at a half level, a
//! flicker of its own (rounding's error is up to half a level) that no weight removes; where
//! the gate is closed the frame is `y_t` exactly. The state is the previous input's luma, the previous smoothed
//! value (unrounded) and the level shown, at frame resolution; the first frame after a
//! [`Smoother::reset`] or a size change passes unblended and starts it.
//!
//! The CUDA post-processing kernel (`edge/src/backend/cuda/kernels.cu`) computes the same thing
//! to the bit, so the constants here are its arguments.
use std::ops::RangeInclusive;

use crate::{Error, Result};

/// The smoothings accepted: 0 is off (each frame on its own), 1 holds still areas at the first
/// frame after a reset.
pub const RANGE: RangeInclusive<f64> = 0.0..=1.0;

/// Pixels on each side of the window the luma change is averaged over (5x5): one noisy pixel
/// cannot close the gate, and a moving edge closes it around itself.
pub const RADIUS: usize = 2;

/// Mean absolute luma change (levels of 255) up to which the gate is fully open. Sensor noise of
/// σ = 2 levels gives frame-to-frame differences of σ·√2 = 2.8, whose mean absolute value is
/// 2.3, and over 25 pixels (9 in a corner) that mean varies by 0.3 (0.6): 6 is over 6σ above it.
pub const GATE_OPEN: u32 = 6;

/// Mean absolute luma change from which the gate is closed (this frame's translation alone). A
/// thing of contrast 45 or more that moves 3 pixels a frame changes at least 9 of the 25 pixels
/// of the window around any pixel it changed (3x3 at its corners: 9 · 45 / 25 ≥ 16), so the
/// output there is this frame's own; slower things need more contrast (80 at 1 pixel a frame,
/// where a window holds a column of 5 changed pixels), and get a partial blend below it.
pub const GATE_CLOSED: u32 = 16;

/// How far (in levels of 255) the smoothed value may move from the level shown before, where
/// it was blended, before the frame shows it rounded. One level: below it the eye sees no step,
/// and a value hovering at a half level (±0.5 around it) stays put.
pub const HOLD: f32 = 1.0;

/// The previous output's weight where the input is still, for smoothing `s` in [`RANGE`].
pub fn weight(smoothing: f64) -> f32 {
    let k = (1.0 - smoothing) * (1.0 - smoothing);
    ((1.0 - k) / (1.0 + k)) as f32
}

/// `smoothing` if it is in [`RANGE`] (NaN is not).
pub fn check(smoothing: f64) -> Result<f64> {
    if RANGE.contains(&smoothing) {
        Ok(smoothing)
    } else {
        Err(Error::Invalid(format!(
            "temporal smoothing {smoothing}: must be between {} and {} (0: off)",
            RANGE.start(),
            RANGE.end()
        )))
    }
}

/// One frame's smoothing, as a backend that post-processes frames on its own device
/// ([`crate::backend::Backend::submit_frame`]) is told it; the frames' order is the order
/// submitted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// No smoothing: the state, if any, may go.
    Off,
    /// The frame passes unblended and becomes the state (after a reset, a new size, smoothing
    /// switched on).
    Restart,
    /// Blend with the state of the frame before, of the same size, at this still-scene
    /// [`weight`].
    Blend(f32),
}

/// The integer luma of one RGB pixel: BT.601 weights in 8-bit fixed point (77 + 150 + 29 = 256;
/// at most 65408, so u16 arithmetic, 8 pixels an instruction).
#[inline]
fn luma(px: &[u8]) -> u8 {
    ((77 * px[0] as u16 + 150 * px[1] as u16 + 29 * px[2] as u16 + 128) >> 8) as u8
}

/// The gate for a window of `count` pixels whose luma changed by `sum` in all. Without branches
/// (and through i32, which converts to f32 in one instruction), so that rows vectorise; the
/// kernel's branches give the same bits: the operands are exact integers in f32, and the clamp
/// lands on exactly 1 and 0.
#[inline]
fn gate(sum: u16, count: u32) -> f32 {
    let (open, closed) = ((GATE_OPEN * count) as i32, (GATE_CLOSED * count) as i32);
    ((closed - sum as i32) as f32 / (closed - open) as f32).clamp(0.0, 1.0)
}

/// `v` rounded as the rest of the CPU path (and the kernel) rounds: clamped to 0..=255, +0.5 and
/// truncation.
#[inline]
#[allow(clippy::manual_clamp)] // `clamp` would keep a NaN, for which the conversion is undefined
fn to_u8(v: f32) -> u8 {
    // `max` and `min` return the number, not a NaN: the value is in [0.5, 255.5] whatever `v` is.
    let v = v.max(0.0).min(255.0) + 0.5;
    // SAFETY: finite and within i32 (above). `as` would saturate, which compiles to a scalar
    // loop; this converts 4 values an instruction (the blend took twice as long with `as`).
    unsafe { v.to_int_unchecked::<i32>() as u8 }
}

/// The level shown for the blended value `v` where `shown` was shown before ([`HOLD`]).
/// Both outcomes are computed and one selected, so that rows vectorise.
#[inline]
fn hold(v: f32, shown: u8) -> u8 {
    let rounded = to_u8(v);
    if (v - shown as f32).abs() > HOLD { rounded } else { shown }
}

/// Pixels of the window around `i` inside `0..len`.
#[inline]
fn window(i: usize, len: usize) -> u32 {
    ((i + RADIUS).min(len - 1) - i.saturating_sub(RADIUS) + 1) as u32
}

/// One stream's temporal smoothing on packed RGB at frame resolution (see the module). After the
/// first frame of a size, [`Smoother::apply`] allocates nothing.
#[derive(Debug, Clone)]
pub struct Smoother {
    smoothing: f64,
    weight: f32,
    /// (width, height) of the state; None: the next frame starts it.
    size: Option<(usize, usize)>,
    /// The previous input's luma.
    luma: Vec<u8>,
    /// The previous smoothed output, unrounded: rounded to u8, the average would stick wherever
    /// a new value moves it by less than half a level, up to 0.5 / (1 - w) levels off.
    output: Vec<f32>,
    /// The previous frame's output as shown (8 bits), for [`HOLD`].
    shown: Vec<u8>,
    /// This frame's luma change along one row.
    line: Vec<u8>,
    /// This frame's luma change summed over each pixel's row of the window (at most 5 · 255).
    rows: Vec<u16>,
    /// `rows` summed down each column over the window of the row being blended (25 · 255).
    columns: Vec<u16>,
    /// Pixels of each column's window (the rows' count multiplies it).
    widths: Vec<u32>,
    /// The previous output's weight for each pixel, then each value, of the row being blended.
    gates: Vec<f32>,
    weights: Vec<f32>,
}

impl Smoother {
    /// A smoother with smoothing `s` in [`RANGE`] (0: [`Smoother::apply`] changes nothing).
    pub fn new(smoothing: f64) -> Result<Self> {
        let smoothing = check(smoothing)?;
        Ok(Self {
            smoothing,
            weight: weight(smoothing),
            size: None,
            luma: Vec::new(),
            output: Vec::new(),
            shown: Vec::new(),
            line: Vec::new(),
            rows: Vec::new(),
            columns: Vec::new(),
            widths: Vec::new(),
            gates: Vec::new(),
            weights: Vec::new(),
        })
    }

    pub fn smoothing(&self) -> f64 {
        self.smoothing
    }

    /// Changes the smoothing, keeping the state, except from or to 0, where there is none: the
    /// next frame starts it afresh.
    pub fn set_smoothing(&mut self, smoothing: f64) -> Result<()> {
        let smoothing = check(smoothing)?;
        if (smoothing == 0.0) != (self.smoothing == 0.0) {
            self.reset();
        }
        self.smoothing = smoothing;
        self.weight = weight(smoothing);
        Ok(())
    }

    /// Drops the state (its buffers are kept): the next frame passes unblended. For cuts, seeks
    /// and anything else after which the previous frame is not this one's past.
    pub fn reset(&mut self) {
        self.size = None;
    }

    /// Smooths `output_rgb`, this frame's translation of `input_rgb` (both packed RGB of
    /// `width` x `height`), in place. A frame of another size than the last one starts afresh.
    ///
    /// # Panics
    /// Where a slice holds fewer than `width * height * 3` bytes, or the size is empty, while
    /// smoothing is on.
    pub fn apply(&mut self, input_rgb: &[u8], output_rgb: &mut [u8], width: usize, height: usize) {
        if self.smoothing == 0.0 {
            return;
        }
        let pixels = width * height;
        assert!(pixels > 0, "an empty {width}x{height} frame");
        assert!(
            input_rgb.len() >= 3 * pixels && output_rgb.len() >= 3 * pixels,
            "{width}x{height} RGB needs {} bytes: the input holds {}, the output {}",
            3 * pixels,
            input_rgb.len(),
            output_rgb.len()
        );
        let (input, output) = (&input_rgb[..3 * pixels], &mut output_rgb[..3 * pixels]);
        if self.size != Some((width, height)) {
            self.start(input, output, width, height);
            return;
        }
        self.measure_change(input, width);
        self.blend(output, width, height);
    }

    /// Takes this frame as the state, unblended.
    fn start(&mut self, input: &[u8], output: &[u8], width: usize, height: usize) {
        self.luma.clear();
        self.luma.extend(input.chunks_exact(3).map(luma));
        self.output.clear();
        self.output.extend(output.iter().map(|&v| v as f32));
        self.shown.clear();
        self.shown.extend_from_slice(output);
        self.line.resize(width, 0);
        self.rows.resize(width * height, 0);
        self.columns.resize(width, 0);
        self.widths.clear();
        self.widths.extend((0..width).map(|x| window(x, width)));
        self.gates.resize(width, 0.0);
        self.weights.resize(3 * width, 0.0);
        self.size = Some((width, height));
    }

    /// `rows` from the luma change since the previous input, which this one replaces.
    fn measure_change(&mut self, input: &[u8], width: usize) {
        for ((rgb, previous), sums) in
            input.chunks_exact(3 * width).zip(self.luma.chunks_exact_mut(width)).zip(self.rows.chunks_exact_mut(width))
        {
            for ((px, old), change) in rgb.chunks_exact(3).zip(previous.iter_mut()).zip(self.line.iter_mut()) {
                let new = luma(px);
                *change = new.abs_diff(*old);
                *old = new;
            }
            // The sum over x-RADIUS..=x+RADIUS clipped to the row, one shift at a time (each a
            // vectorised pass over the row).
            sums.fill(0);
            for shift in 0..=RADIUS.min(width - 1) {
                for (sum, &c) in sums.iter_mut().zip(&self.line[shift..]) {
                    *sum += c as u16;
                }
                if shift > 0 {
                    for (sum, &c) in sums[shift..].iter_mut().zip(&self.line) {
                        *sum += c as u16;
                    }
                }
            }
        }
    }

    /// Blends each pixel with the state by its window's gate, and keeps the result as the state.
    fn blend(&mut self, output: &mut [u8], width: usize, height: usize) {
        let rows = |y: usize| &self.rows[y * width..(y + 1) * width];
        self.columns.fill(0);
        for y in 0..=RADIUS.min(height - 1) {
            self.columns.iter_mut().zip(rows(y)).for_each(|(c, &r)| *c += r);
        }
        let narrowest = self.widths.iter().copied().min().unwrap_or(1);
        let widest = self.widths.iter().copied().max().unwrap_or(1);
        for y in 0..height {
            let high = window(y, height);
            let out_row = &mut output[3 * y * width..3 * (y + 1) * width];
            let state_row = &mut self.output[3 * y * width..3 * (y + 1) * width];
            let shown_row = &mut self.shown[3 * y * width..3 * (y + 1) * width];
            // Rows whose gates are all open (a still scene) or all closed (a pan) skip the gates:
            // the same values, faster.
            let most = self.columns.iter().copied().max().unwrap_or(0) as u32;
            let least = self.columns.iter().copied().min().unwrap_or(0) as u32;
            if most <= GATE_OPEN * narrowest * high {
                let (a, b) = (self.weight, 1.0 - self.weight);
                for ((o, s), shown) in out_row.iter_mut().zip(state_row.iter_mut()).zip(shown_row.iter_mut()) {
                    let v = a * *s + b * *o as f32;
                    *s = v;
                    *o = hold(v, *shown);
                    *shown = *o;
                }
            } else if least >= GATE_CLOSED * widest * high {
                // 0 · s + 1 · o is o: the state becomes this frame's output, which stays.
                state_row.iter_mut().zip(out_row.iter()).for_each(|(s, &o)| *s = o as f32);
                shown_row.copy_from_slice(out_row);
            } else {
                for ((g, &sum), &wide) in self.gates.iter_mut().zip(&self.columns).zip(&self.widths) {
                    *g = gate(sum, wide * high) * self.weight;
                }
                for (a, &g) in self.weights.chunks_exact_mut(3).zip(&self.gates) {
                    a.fill(g);
                }
                for (((o, s), shown), &a) in
                    out_row.iter_mut().zip(state_row.iter_mut()).zip(shown_row.iter_mut()).zip(&self.weights)
                {
                    let v = a * *s + (1.0 - a) * *o as f32;
                    *s = v;
                    *o = if a > 0.0 { hold(v, *shown) } else { to_u8(v) };
                    *shown = *o;
                }
            }
            // Slide the window down: row y+RADIUS+1 comes in, row y-RADIUS leaves.
            if y + RADIUS + 1 < height {
                self.columns.iter_mut().zip(rows(y + RADIUS + 1)).for_each(|(c, &r)| *c += r);
            }
            if y >= RADIUS {
                self.columns.iter_mut().zip(rows(y - RADIUS)).for_each(|(c, &r)| *c -= r);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::motion::{Rgb, flicker};

    /// Reproducible noise (rand's seeded generator, the Gaussian of `motion`).
    struct Noise(StdRng);

    impl Noise {
        fn seeded(seed: u64) -> Self {
            Self(StdRng::seed_from_u64(seed))
        }

        fn next(&mut self) -> u64 {
            self.0.random()
        }

        fn gaussian(&mut self, sigma: f64) -> f64 {
            sigma * crate::motion::gaussian(&mut self.0)
        }

        /// Uniform integer in -k..=k.
        fn int(&mut self, k: i32) -> i32 {
            self.0.random_range(-k..=k)
        }
    }

    fn add(v: u8, d: f64) -> u8 {
        (v as f64 + d).round().clamp(0.0, 255.0) as u8
    }

    /// A textured still background.
    fn background(w: usize, h: usize) -> Vec<u8> {
        (0..w * h).flat_map(|i| [(60 + i % w * 2) as u8, (90 + i / w * 3) as u8, (40 + (i * 7) % 50) as u8]).collect()
    }

    /// The definition, pixel by pixel, as the CUDA kernel computes it: 5x5 sums by brute force and
    /// the gate with branches.
    fn direct(
        input: &[u8],
        previous: &[u8],
        translated: &[u8],
        state: &mut [f32],
        shown: &mut [u8],
        (w, h): (usize, usize),
        s: f64,
    ) {
        let luma = |rgb: &[u8], i: usize| luma(&rgb[3 * i..3 * i + 3]) as i32;
        let weight = weight(s);
        for y in 0..h {
            for x in 0..w {
                let (mut sum, mut count) = (0u32, 0u32);
                for yy in y.saturating_sub(RADIUS)..=(y + RADIUS).min(h - 1) {
                    for xx in x.saturating_sub(RADIUS)..=(x + RADIUS).min(w - 1) {
                        sum += (luma(input, yy * w + xx) - luma(previous, yy * w + xx)).unsigned_abs();
                        count += 1;
                    }
                }
                let (open, closed) = (GATE_OPEN * count, GATE_CLOSED * count);
                let g = if sum <= open {
                    1.0
                } else if sum >= closed {
                    0.0
                } else {
                    (closed - sum) as f32 / (closed - open) as f32
                };
                let a = g * weight;
                for c in 0..3 {
                    let i = 3 * (y * w + x) + c;
                    let v = a * state[i] + (1.0 - a) * translated[i] as f32;
                    state[i] = v;
                    if a == 0.0 || (v - shown[i] as f32).abs() > HOLD {
                        shown[i] = (v.clamp(0.0, 255.0) + 0.5) as u8;
                    }
                }
            }
        }
    }

    #[test]
    fn rows_and_fast_paths_match_the_direct_computation() {
        let (w, h) = (37, 23);
        let s = 0.7;
        let mut noise = Noise::seeded(5);
        let mut smoother = Smoother::new(s).unwrap();
        let mut previous: Vec<u8> = (0..w * h * 3).map(|_| noise.next() as u8).collect();
        let mut state: Vec<f32> = (0..w * h * 3).map(|_| (noise.next() % 256) as f32).collect();
        let mut first: Vec<u8> = state.iter().map(|&v| v as u8).collect();
        smoother.apply(&previous, &mut first, w, h);
        let mut shown = first.clone();
        for t in 0..6 {
            // Still rows (change 0..=2), ramp rows (change ~11), changed rows (change ~90), and a
            // frame that changes everywhere.
            let input: Vec<u8> = previous
                .chunks_exact(3 * w)
                .enumerate()
                .flat_map(|(y, row)| {
                    let step = if t == 5 { 90 } else { [0, 11, 90][(y / 8 + t) % 3] };
                    row.iter().map(|&v| v.wrapping_add(step + (noise.next() % 3) as u8)).collect::<Vec<_>>()
                })
                .collect();
            // Odd rows near the first frame's output (within a level or two: the hold), even rows
            // anywhere.
            let translated: Vec<u8> = (0..w * h * 3)
                .map(|i| if i / (3 * w) % 2 == 0 { noise.next() as u8 } else { add(first[i], noise.int(2) as f64) })
                .collect();
            let mut out = translated.clone();
            smoother.apply(&input, &mut out, w, h);
            direct(&input, &previous, &translated, &mut state, &mut shown, (w, h), s);
            assert_eq!(out, shown, "frame {t}");
            previous = input;
        }
    }

    #[test]
    fn zero_changes_nothing_and_keeps_no_state() {
        let (w, h) = (17, 9);
        let mut noise = Noise::seeded(7);
        let mut smoother = Smoother::new(0.0).unwrap();
        for _ in 0..4 {
            let input: Vec<u8> = (0..w * h * 3).map(|_| noise.next() as u8).collect();
            let translated: Vec<u8> = (0..w * h * 3).map(|_| noise.next() as u8).collect();
            let mut out = translated.clone();
            smoother.apply(&input, &mut out, w, h);
            assert_eq!(out, translated);
        }
        assert!(smoother.size.is_none() && smoother.output.is_empty());
    }

    #[test]
    fn the_weight_scales_the_smoothed_values_flicker_by_one_minus_s() {
        let (w, h) = (24, 16);
        let still = background(w, h);
        // The generator's output on the still scene, flickering by σ = 8 levels a frame.
        let clean: Vec<u8> = still.iter().map(|&v| 255 - v).collect();
        for s in [0.25, 0.5, 0.8] {
            let mut noise = Noise::seeded(11);
            let mut smoother = Smoother::new(s).unwrap();
            let (mut sum, mut sum_sq) = (vec![0.0f64; w * h * 3], vec![0.0f64; w * h * 3]);
            let (mut raw_sum, mut raw_sq) = (vec![0.0f64; w * h * 3], vec![0.0f64; w * h * 3]);
            // After 200 frames the first frame's weight in the average (0.98^200 at s = 0.8) is gone.
            let (warmup, frames) = (200, 400);
            for t in 0..warmup + frames {
                // Sensor noise of σ = 2 levels, the same on every channel (the most luma change).
                let input: Vec<u8> = still
                    .chunks_exact(3)
                    .flat_map(|px| {
                        let d = noise.gaussian(2.0);
                        [add(px[0], d), add(px[1], d), add(px[2], d)]
                    })
                    .collect();
                let translated: Vec<u8> = clean.iter().map(|&v| add(v, noise.gaussian(8.0))).collect();
                let mut out = translated.clone();
                smoother.apply(&input, &mut out, w, h);
                if t >= warmup {
                    // The unrounded value: what the weight is for (the hold comes after).
                    for i in 0..out.len() {
                        let (o, y) = (smoother.output[i] as f64, translated[i] as f64);
                        (sum[i], sum_sq[i]) = (sum[i] + o, sum_sq[i] + o * o);
                        (raw_sum[i], raw_sq[i]) = (raw_sum[i] + y, raw_sq[i] + y * y);
                    }
                }
            }
            let std = |sum: &[f64], sq: &[f64]| {
                let n = frames as f64;
                let var: f64 = sum.iter().zip(sq).map(|(s, q)| q / n - (s / n).powi(2)).sum::<f64>() / sum.len() as f64;
                var.sqrt()
            };
            let ratio = std(&sum, &sum_sq) / std(&raw_sum, &raw_sq);
            assert!((ratio - (1.0 - s)).abs() < 0.03, "s = {s}: flicker scaled by {ratio:.3}, not {:.3}", 1.0 - s);
        }
    }

    #[test]
    fn the_hold_stops_rounding_flicker_and_stays_within_a_level() {
        let (w, h) = (24, 16);
        let still = background(w, h);
        let s = 0.5;
        let mut noise = Noise::seeded(13);
        let mut smoother = Smoother::new(s).unwrap();
        // A generator whose output sits between two levels (x.5) with sub-level flicker, so
        // that its smoothed value hovers around the rounding boundary.
        let level: Vec<f64> = (0..w * h * 3).map(|i| 40.5 + (i % 150) as f64).collect();
        let (mut shown, mut rounded) = (Vec::new(), Vec::new());
        for t in 0..100 {
            let input: Vec<u8> = still.iter().map(|&v| add(v, noise.gaussian(2.0))).collect();
            let translated: Vec<u8> = level.iter().map(|&v| (v + noise.gaussian(0.6)).round() as u8).collect();
            let mut out = translated.clone();
            smoother.apply(&input, &mut out, w, h);
            for (&o, &v) in out.iter().zip(&smoother.output) {
                assert!((o as f32 - v).abs() <= HOLD + 0.5, "frame {t}: {o} shown for {v}");
            }
            if t >= 10 {
                rounded.push(Rgb::new(w, h, smoother.output.iter().map(|&v| to_u8(v)).collect()));
                shown.push(Rgb::new(w, h, out));
            }
        }
        let (held, plain) = (flicker(&shown).unwrap(), flicker(&rounded).unwrap());
        assert!(held < 0.9 * plain, "flicker {held:.3} with the hold, {plain:.3} rounded");

        // A slow ramp of a quarter level a frame is followed: within the hold and the average's
        // lag (0.25 · w / (1 - w) = 0.375 levels at s = 0.5) of the translation.
        let mut smoother = Smoother::new(s).unwrap();
        for t in 0..200usize {
            let input: Vec<u8> = still.iter().map(|&v| add(v, noise.gaussian(2.0))).collect();
            let y = 60 + (t / 4) as u8;
            let mut out = vec![y; w * h * 3];
            smoother.apply(&input, &mut out, w, h);
            assert!(out.iter().all(|&o| o.abs_diff(y) <= 2), "frame {t}: {} for {y}", out[0]);
        }
    }

    #[test]
    fn the_gate_ramps_between_the_thresholds() {
        let (w, h) = (8, 8);
        let s = 0.5;
        let wt = weight(s) as f64;
        // A uniform grey input whose luma changes by `change` everywhere, 100 -> 200 translated.
        for (change, g) in [(0u8, 1.0), (GATE_OPEN as u8, 1.0), (11, 0.5), (GATE_CLOSED as u8, 0.0), (80, 0.0)] {
            let mut smoother = Smoother::new(s).unwrap();
            let mut first = vec![100u8; w * h * 3];
            smoother.apply(&vec![50; w * h * 3], &mut first, w, h);
            assert_eq!(first, vec![100; w * h * 3], "the first frame passes unblended");
            let mut out = vec![200u8; w * h * 3];
            smoother.apply(&vec![50 + change; w * h * 3], &mut out, w, h);
            let a = g * wt;
            let expected = (a * 100.0 + (1.0 - a) * 200.0).round() as u8;
            assert!(out.iter().all(|&v| v.abs_diff(expected) <= 1), "change {change}: {} not {expected}", out[0]);
        }
    }

    #[test]
    fn a_moving_square_leaves_no_trail() {
        // The square's luma is 16, the background's 75 or more: an edge of contrast > 45.
        let (w, h, side) = (64, 40, 12);
        let s = 0.5;
        let bg = background(w, h);
        let mut noise = Noise::seeded(3);
        let mut smoother = Smoother::new(s).unwrap();
        // The square's top-left corner in frame t: 3 pixels to the right a frame.
        let corner = |t: usize| (4 + 3 * t, 14);
        let inside = |t: usize, x: usize, y: usize| {
            let (cx, cy) = corner(t);
            (cx..cx + side).contains(&x) && (cy..cy + side).contains(&y)
        };
        for t in 0..14 {
            // Sensor noise of σ = 2 (uniform in -3..=3), a dark square, and a generator that
            // inverts the picture with flicker in -4..=4.
            let input: Vec<u8> = (0..w * h)
                .flat_map(|i| {
                    let (x, y) = (i % w, i / w);
                    let d = noise.int(3) as f64;
                    if inside(t, x, y) {
                        [add(20, d), add(15, d), add(10, d)]
                    } else {
                        [add(bg[3 * i], d), add(bg[3 * i + 1], d), add(bg[3 * i + 2], d)]
                    }
                })
                .collect();
            let translated: Vec<u8> = input.iter().map(|&v| add(255 - v, noise.int(4) as f64)).collect();
            let mut out = translated.clone();
            smoother.apply(&input, &mut out, w, h);
            for i in 0..w * h {
                let (x, y) = (i % w, i / w);
                for c in 0..3 {
                    let (o, y_t) = (out[3 * i + c], translated[3 * i + c]);
                    if t > 0 && inside(t, x, y) != inside(t - 1, x, y) {
                        // The input changed: this frame's translation.
                        assert_eq!(o, y_t, "frame {t} ({x}, {y}): the square's edge is smoothed");
                    } else if !inside(t, x, y) {
                        // Background, however recently the square left it: its own translation
                        // within the noise (3 + 4 levels), never the square's (60 levels and more off).
                        let clean = 255 - bg[3 * i + c];
                        assert!(o.abs_diff(clean) <= 8, "frame {t} ({x}, {y}): {o}, the background is {clean}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_reset_or_a_new_size_starts_afresh() {
        let (w, h) = (10, 6);
        let mut smoother = Smoother::new(0.6).unwrap();
        let input = vec![80u8; w * h * 3];
        let mut out = vec![10u8; w * h * 3];
        smoother.apply(&input, &mut out, w, h);
        let mut blended = vec![200u8; w * h * 3];
        smoother.apply(&input, &mut blended, w, h);
        assert!(blended.iter().all(|&v| v < 150), "the still input blends: {}", blended[0]);
        smoother.reset();
        let mut fresh = vec![200u8; w * h * 3];
        smoother.apply(&input, &mut fresh, w, h);
        assert_eq!(fresh, vec![200; w * h * 3]);
        // Another size: the state at the old one does not apply.
        let mut other = vec![30u8; 7 * 5 * 3];
        smoother.apply(&[80; 7 * 5 * 3], &mut other, 7, 5);
        assert_eq!(other, vec![30; 7 * 5 * 3]);
        // Switched off and on: no state survives.
        smoother.set_smoothing(0.0).unwrap();
        smoother.set_smoothing(0.6).unwrap();
        let mut on = vec![90u8; 7 * 5 * 3];
        smoother.apply(&[80; 7 * 5 * 3], &mut on, 7, 5);
        assert_eq!(on, vec![90; 7 * 5 * 3]);
        // Changed while on: the state is kept.
        smoother.set_smoothing(0.9).unwrap();
        let mut kept = vec![10u8; 7 * 5 * 3];
        smoother.apply(&[80; 7 * 5 * 3], &mut kept, 7, 5);
        assert!(kept.iter().all(|&v| v > 50), "{}", kept[0]);
    }

    #[test]
    fn one_pixel_frames_and_thin_ones_work() {
        for (w, h) in [(1, 1), (1, 9), (9, 1), (2, 3)] {
            let mut smoother = Smoother::new(0.5).unwrap();
            for v in [10u8, 20, 30] {
                let mut out = vec![v; w * h * 3];
                smoother.apply(&vec![100; w * h * 3], &mut out, w, h);
                assert!(out.iter().all(|&o| o <= v), "{w}x{h}");
            }
        }
    }

    #[test]
    fn values_outside_zero_to_one_are_refused() {
        for bad in [-0.1, 1.01, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let err = Smoother::new(bad).unwrap_err().to_string();
            assert!(err.contains("temporal smoothing") && err.contains("between 0 and 1"), "{err}");
            assert!(Smoother::new(0.5).unwrap().set_smoothing(bad).is_err());
        }
        assert_eq!(weight(0.0), 0.0);
        assert_eq!(weight(1.0), 1.0);
        // (1-w)/(1+w) = (1-s)²: 0.5 gives w = 0.6.
        assert!((weight(0.5) - 0.6).abs() < 1e-6);
    }
}
