//! How steady a translation of video is, measured on sequences with known motion made from still
//! images: the warping error of Lai et al. (ECCV 2018) for a pan, a zoom, a rotation and a smooth
//! local deformation, and the flicker of a still scene with sensor noise.
//! `cyclegan-train eval --temporal` and `cyclegan-edge bench --temporal` both measure with this,
//! so checkpoints, ONNX files, precisions and backends are compared on the same sequences.
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::{Error, Result};

/// Frames per sequence unless asked otherwise.
pub const DEFAULT_FRAMES: usize = 30;
/// Sensor noise of the still scene: σ = 2/255, in 8-bit levels.
pub const STILL_NOISE_LEVELS: f64 = 2.0;
/// A frame is this share of its source image per side, so that every motion stays inside it.
const FRAME_SHARE: f64 = 0.75;
/// The smallest frame side (the generators need multiples of 4, and motion needs room).
const MIN_FRAME_SIDE: usize = 16;

/// Packed 8-bit RGB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgb {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl Rgb {
    pub fn new(width: usize, height: usize, data: Vec<u8>) -> Self {
        assert_eq!(data.len(), width * height * 3, "packed RGB of {width}x{height}");
        Self { width, height, data }
    }

    /// Bilinear sample of channel `c` at pixel coordinates (x, y), edges replicated.
    fn sample(&self, x: f64, y: f64, c: usize) -> f64 {
        let x = x.clamp(0.0, (self.width - 1) as f64);
        let y = y.clamp(0.0, (self.height - 1) as f64);
        let (x0, y0) = (x.floor() as usize, y.floor() as usize);
        let (x1, y1) = ((x0 + 1).min(self.width - 1), (y0 + 1).min(self.height - 1));
        let (fx, fy) = (x - x0 as f64, y - y0 as f64);
        let at = |x: usize, y: usize| self.data[(y * self.width + x) * 3 + c] as f64;
        let top = at(x0, y0) * (1.0 - fx) + at(x1, y0) * fx;
        let bottom = at(x0, y1) * (1.0 - fx) + at(x1, y1) * fx;
        top * (1.0 - fy) + bottom * fy
    }
}

/// The motions of the warping-error sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Motion {
    /// The frame slides across the image: 12% of its width and 6% of its height.
    Pan,
    /// Zooming in by 25%.
    Zoom,
    /// Turning from -4 to +4 degrees about the centre.
    Rotation,
    /// A smooth local displacement field growing to 3% of the frame's side.
    Deformation,
}

impl Motion {
    pub const ALL: [Motion; 4] = [Self::Pan, Self::Zoom, Self::Rotation, Self::Deformation];

    pub fn name(self) -> &'static str {
        match self {
            Self::Pan => "pan",
            Self::Zoom => "zoom",
            Self::Rotation => "rotation",
            Self::Deformation => "deformation",
        }
    }
}

/// Where frame `t`'s pixel p is in the source image:
/// A(p) = c_source + M (p - c_frame) + shift + s D(p), D a fixed smooth field.
#[derive(Debug, Clone, Copy)]
struct Placement {
    /// Row-major 2x2.
    m: [f64; 4],
    shift: [f64; 2],
    s: f64,
}

struct Geometry {
    source: [f64; 2],
    frame: (usize, usize),
    /// Amplitude of D in pixels.
    amplitude: f64,
}

impl Geometry {
    fn centre(&self) -> [f64; 2] {
        [(self.frame.0 - 1) as f64 / 2.0, (self.frame.1 - 1) as f64 / 2.0]
    }

    /// The smooth field: two low-frequency waves per axis over the frame.
    fn field(&self, p: [f64; 2]) -> [f64; 2] {
        use std::f64::consts::TAU;
        let (u, v) = (p[0] / self.frame.0 as f64, p[1] / self.frame.1 as f64);
        let dx = (TAU * (0.9 * u + 0.4 * v) + 0.3).sin() + 0.5 * (TAU * (1.3 * v) + 1.1).sin();
        let dy = (TAU * (0.5 * u - 0.8 * v) + 2.0).cos() + 0.5 * (TAU * (1.2 * u) + 0.7).sin();
        [self.amplitude * dx / 1.5, self.amplitude * dy / 1.5]
    }

    fn forward(&self, a: &Placement, p: [f64; 2]) -> [f64; 2] {
        let c = self.centre();
        let (x, y) = (p[0] - c[0], p[1] - c[1]);
        let d = self.field(p);
        [
            self.source[0] + a.m[0] * x + a.m[1] * y + a.shift[0] + a.s * d[0],
            self.source[1] + a.m[2] * x + a.m[3] * y + a.shift[1] + a.s * d[1],
        ]
    }

    /// The frame pixel that `forward` takes to `q`: a fixed-point iteration, a contraction
    /// because the field's gradient is far below 1.
    fn inverse(&self, a: &Placement, q: [f64; 2]) -> [f64; 2] {
        let c = self.centre();
        let det = a.m[0] * a.m[3] - a.m[1] * a.m[2];
        let inv = [a.m[3] / det, -a.m[1] / det, -a.m[2] / det, a.m[0] / det];
        let mut p = c;
        for _ in 0..12 {
            let d = self.field(p);
            let r = [q[0] - self.source[0] - a.shift[0] - a.s * d[0], q[1] - self.source[1] - a.shift[1] - a.s * d[1]];
            p = [c[0] + inv[0] * r[0] + inv[1] * r[1], c[1] + inv[2] * r[0] + inv[3] * r[1]];
        }
        p
    }
}

fn placement(motion: Motion, tau: f64, frame: (usize, usize)) -> Placement {
    let (w, h) = (frame.0 as f64, frame.1 as f64);
    let identity = Placement { m: [1.0, 0.0, 0.0, 1.0], shift: [0.0, 0.0], s: 0.0 };
    match motion {
        Motion::Pan => Placement { shift: [(tau - 0.5) * 0.12 * w, (tau - 0.5) * 0.06 * h], ..identity },
        Motion::Zoom => {
            let k = 1.0 / (1.0 + 0.25 * tau);
            Placement { m: [k, 0.0, 0.0, k], ..identity }
        }
        Motion::Rotation => {
            let a = (-4.0 + 8.0 * tau).to_radians();
            Placement { m: [a.cos(), -a.sin(), a.sin(), a.cos()], ..identity }
        }
        Motion::Deformation => Placement { s: tau, ..identity },
    }
}

/// The frame size for a source image: [`FRAME_SHARE`] of it, in multiples of 4.
pub fn frame_size(width: usize, height: usize) -> Result<(usize, usize)> {
    let side = |n: usize| ((n as f64 * FRAME_SHARE) as usize) / 4 * 4;
    let size = (side(width), side(height));
    if size.0 < MIN_FRAME_SIDE || size.1 < MIN_FRAME_SIDE {
        return Err(Error::Invalid(format!(
            "a {width}x{height} image is too small for a sequence with motion: frames are {}% of it per side and need at least {MIN_FRAME_SIDE} pixels",
            (FRAME_SHARE * 100.0) as u32
        )));
    }
    Ok(size)
}

fn check_frames(frames: usize) -> Result<()> {
    if frames < 2 {
        return Err(Error::Invalid(format!(
            "a sequence of {frames} frame(s) has no motion to measure: ask for at least 2 (--sequence-frames)"
        )));
    }
    Ok(())
}

/// Frames of one motion over a source image, and for each frame after the first where each of
/// its pixels was in the frame before (pixel coordinates), which is what the warping error
/// compares along.
pub struct Sequence {
    pub motion: Motion,
    pub frames: Vec<Rgb>,
    /// `flows[t - 1][p]`: frame t's pixel p in frame t - 1; `None` where it was out of frame.
    flows: Vec<Vec<Option<[f32; 2]>>>,
}

impl Sequence {
    pub fn new(source: &Rgb, motion: Motion, frames: usize) -> Result<Self> {
        check_frames(frames)?;
        let (w, h) = frame_size(source.width, source.height)?;
        let geometry = Geometry {
            source: [(source.width - 1) as f64 / 2.0, (source.height - 1) as f64 / 2.0],
            frame: (w, h),
            amplitude: 0.03 * w.min(h) as f64,
        };
        let placements: Vec<Placement> =
            (0..frames).map(|t| placement(motion, t as f64 / (frames - 1) as f64, (w, h))).collect();
        let pixels = || (0..h).flat_map(move |y| (0..w).map(move |x| [x as f64, y as f64]));
        let images = placements
            .iter()
            .map(|a| {
                let mut data = Vec::with_capacity(w * h * 3);
                for p in pixels() {
                    let q = geometry.forward(a, p);
                    data.extend((0..3).map(|c| source.sample(q[0], q[1], c).round() as u8));
                }
                Rgb::new(w, h, data)
            })
            .collect();
        let inside = |p: [f64; 2]| p[0] >= 0.0 && p[1] >= 0.0 && p[0] <= (w - 1) as f64 && p[1] <= (h - 1) as f64;
        let flows = placements
            .windows(2)
            .map(|pair| {
                pixels()
                    .map(|p| {
                        let before = geometry.inverse(&pair[0], geometry.forward(&pair[1], p));
                        inside(before).then(|| [before[0] as f32, before[1] as f32])
                    })
                    .collect()
            })
            .collect();
        Ok(Self { motion, frames: images, flows })
    }

    /// Lai et al.'s warping error of `outputs` (one per frame, in [0, 1] units): the mean over
    /// frames t >= 1 of the mean squared difference between output t and output t - 1 warped
    /// to frame t, over the pixels that were in frame.
    pub fn warping_error(&self, outputs: &[Rgb]) -> Result<f64> {
        if outputs.len() != self.frames.len() {
            return Err(Error::Invalid(format!(
                "{} outputs for a sequence of {} frames",
                outputs.len(),
                self.frames.len()
            )));
        }
        let (w, h) = (self.frames[0].width, self.frames[0].height);
        if let Some(o) = outputs.iter().find(|o| (o.width, o.height) != (w, h)) {
            return Err(Error::Invalid(format!(
                "an output of {}x{} in a sequence of {w}x{h} frames: the size changed mid-sequence",
                o.width, o.height
            )));
        }
        let mut total = 0.0;
        for (t, flow) in (1..).zip(&self.flows) {
            let (now, before) = (&outputs[t], &outputs[t - 1]);
            let (mut sum, mut n) = (0.0, 0usize);
            for (i, q) in flow.iter().enumerate() {
                let Some(q) = q else { continue };
                for c in 0..3 {
                    let d = (now.data[i * 3 + c] as f64 - before.sample(q[0] as f64, q[1] as f64, c)) / 255.0;
                    sum += d * d;
                }
                n += 3;
            }
            total += sum / n.max(1) as f64;
        }
        Ok(total / self.flows.len() as f64)
    }
}

/// A still scene: the sequences' first frame (a centre crop) repeated, each copy with fresh
/// Gaussian noise of σ = `noise_levels`/255, rounded to 8 bits.
pub fn still_scene(source: &Rgb, frames: usize, noise_levels: f64, seed: u64) -> Result<Vec<Rgb>> {
    check_frames(frames)?;
    let (w, h) = frame_size(source.width, source.height)?;
    let (x0, y0) = ((source.width - w) / 2, (source.height - h) / 2);
    let mut crop = Vec::with_capacity(w * h * 3);
    for y in y0..y0 + h {
        let row = (y * source.width + x0) * 3;
        crop.extend_from_slice(&source.data[row..row + w * 3]);
    }
    let mut rng = StdRng::seed_from_u64(seed);
    Ok((0..frames)
        .map(|_| {
            let data =
                crop.iter().map(|&v| (v as f64 + noise_levels * gaussian(&mut rng)).round().clamp(0.0, 255.0) as u8);
            Rgb::new(w, h, data.collect())
        })
        .collect())
}

/// A standard normal draw (Box-Muller).
pub(crate) fn gaussian(rng: &mut impl Rng) -> f64 {
    let u: f64 = 1.0 - rng.random::<f64>();
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// Flicker: the temporal standard deviation of each pixel and channel, averaged, in 8-bit levels.
pub fn flicker(frames: &[Rgb]) -> Result<f64> {
    check_frames(frames.len())?;
    let len = frames[0].data.len();
    if frames.iter().any(|f| f.data.len() != len) {
        return Err(Error::Invalid("frames of a still scene changed size mid-sequence".into()));
    }
    let n = frames.len() as f64;
    let mut total = 0.0;
    for i in 0..len {
        let mean = frames.iter().map(|f| f.data[i] as f64).sum::<f64>() / n;
        let var = frames.iter().map(|f| (f.data[i] as f64 - mean).powi(2)).sum::<f64>() / (n - 1.0);
        total += var.sqrt();
    }
    Ok(total / len as f64)
}

/// One motion's warping error, averaged over the source images: the input sequence's own (what
/// resampling alone costs: the floor) and the translation's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MotionScore {
    pub motion: Motion,
    pub input: f64,
    pub output: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TemporalScore {
    pub motions: Vec<MotionScore>,
    /// The warping errors averaged over the motions.
    pub input: f64,
    pub output: f64,
    /// Still-scene flicker of the noisy input and of its translation, in 8-bit levels.
    pub flicker_input: f64,
    pub flicker_output: f64,
    pub images: usize,
    pub frames: usize,
}

impl TemporalScore {
    /// A Markdown table: the warping error (x 10^-3) of each motion beside the input's own (the
    /// floor), and the still-scene flicker.
    pub fn table(&self) -> String {
        let mut t = format!(
            "{} image(s), {} frames per sequence; warping error x 10^-3 (lower is steadier)\n\n\
             | sequence | input (floor) | translation |\n|---|---|---|\n",
            self.images, self.frames
        );
        for m in &self.motions {
            t += &format!("| {} | {:.4} | {:.4} |\n", m.motion.name(), m.input * 1e3, m.output * 1e3);
        }
        t += &format!("| mean | {:.4} | {:.4} |\n", self.input * 1e3, self.output * 1e3);
        t += &format!(
            "| still scene, flicker in 8-bit levels (noise σ = {STILL_NOISE_LEVELS}/255) | {:.3} | {:.3} |\n",
            self.flicker_input, self.flicker_output
        );
        t
    }
}

/// Measures `translate` on sequences of `frames` frames made from each of `sources`.
/// `translate(frame, index)` is called in order; `index` 0 starts a new sequence (a stateful
/// translator resets there).
pub fn measure<E: From<Error>>(
    sources: &[Rgb],
    frames: usize,
    mut translate: impl FnMut(&Rgb, usize) -> std::result::Result<Rgb, E>,
) -> std::result::Result<TemporalScore, E> {
    check_frames(frames)?;
    if sources.is_empty() {
        return Err(Error::Invalid("no images to make sequences from".into()).into());
    }
    let mut run = |inputs: &[Rgb]| -> std::result::Result<Vec<Rgb>, E> {
        inputs.iter().enumerate().map(|(i, f)| translate(f, i)).collect()
    };
    let mut motions: Vec<MotionScore> =
        Motion::ALL.iter().map(|&motion| MotionScore { motion, input: 0.0, output: 0.0 }).collect();
    let (mut flicker_input, mut flicker_output) = (0.0, 0.0);
    for (i, source) in sources.iter().enumerate() {
        for score in &mut motions {
            let sequence = Sequence::new(source, score.motion, frames)?;
            let outputs = run(&sequence.frames)?;
            score.input += sequence.warping_error(&sequence.frames)?;
            score.output += sequence.warping_error(&outputs)?;
        }
        let still = still_scene(source, frames, STILL_NOISE_LEVELS, i as u64)?;
        let outputs = run(&still)?;
        flicker_input += flicker(&still)?;
        flicker_output += flicker(&outputs)?;
    }
    let n = sources.len() as f64;
    for score in &mut motions {
        score.input /= n;
        score.output /= n;
    }
    let mean = |f: fn(&MotionScore) -> f64| motions.iter().map(f).sum::<f64>() / motions.len() as f64;
    Ok(TemporalScore {
        input: mean(|m| m.input),
        output: mean(|m| m.output),
        motions,
        flicker_input: flicker_input / n,
        flicker_output: flicker_output / n,
        images: sources.len(),
        frames,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A smooth colourful image, so that bilinear resampling is nearly exact.
    fn smooth(w: usize, h: usize) -> Rgb {
        let mut data = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let (u, v) = (x as f64 / w as f64, y as f64 / h as f64);
                data.push((128.0 + 100.0 * (6.0 * u).sin()) as u8);
                data.push((128.0 + 100.0 * (5.0 * v).cos()) as u8);
                data.push((128.0 + 90.0 * (4.0 * (u + v)).sin()) as u8);
            }
        }
        Rgb::new(w, h, data)
    }

    #[test]
    fn pan_flow_is_the_analytic_shift() {
        let seq = Sequence::new(&smooth(100, 80), Motion::Pan, 11).unwrap();
        let (w, h) = (seq.frames[0].width, seq.frames[0].height);
        assert_eq!((w, h), (72, 60));
        // The frame moves by 12% of its width over 10 steps: each pixel was 0.864 px further right.
        let (dx, dy) = (0.12 * w as f64 / 10.0, 0.06 * h as f64 / 10.0);
        for flow in &seq.flows {
            for (i, q) in flow.iter().enumerate() {
                let (x, y) = ((i % w) as f64, (i / w) as f64);
                let inside = x + dx <= (w - 1) as f64 && y + dy <= (h - 1) as f64;
                assert_eq!(q.is_some(), inside, "mask at ({x}, {y})");
                if let Some(q) = q {
                    assert!((q[0] as f64 - (x + dx)).abs() < 1e-4 && (q[1] as f64 - (y + dy)).abs() < 1e-4);
                }
            }
        }
    }

    #[test]
    fn inverse_undoes_every_motion() {
        for motion in Motion::ALL {
            let g = Geometry { source: [50.0, 40.0], frame: (72, 60), amplitude: 0.03 * 60.0 };
            let a = placement(motion, 0.7, g.frame);
            for p in [[0.0, 0.0], [30.5, 20.0], [71.0, 59.0]] {
                let back = g.inverse(&a, g.forward(&a, p));
                assert!((back[0] - p[0]).abs() < 1e-6 && (back[1] - p[1]).abs() < 1e-6, "{motion:?} at {p:?}");
            }
        }
    }

    #[test]
    fn the_input_floor_is_small_and_flicker_is_caught() {
        let source = smooth(96, 96);
        for motion in Motion::ALL {
            let seq = Sequence::new(&source, motion, 8).unwrap();
            let floor = seq.warping_error(&seq.frames).unwrap();
            assert!(floor < 2e-5, "{motion:?}: floor {floor}");
            // Frames that brighten and darken in turn: what flicker looks like.
            let flickering: Vec<Rgb> = seq
                .frames
                .iter()
                .enumerate()
                .map(|(t, f)| {
                    let k = if t % 2 == 0 { 10 } else { 0 };
                    Rgb::new(f.width, f.height, f.data.iter().map(|&v| v.saturating_add(k)).collect())
                })
                .collect();
            let e = seq.warping_error(&flickering).unwrap();
            assert!(e > 100.0 * floor && e > (8.0f64 / 255.0).powi(2), "{motion:?}: {e} vs floor {floor}");
        }
    }

    #[test]
    fn still_scene_noise_has_the_asked_sigma() {
        let still = still_scene(&smooth(64, 64), 40, STILL_NOISE_LEVELS, 1).unwrap();
        let f = flicker(&still).unwrap();
        // Rounding to 8 bits adds 1/12 level² of variance; the mean of a std estimate is a bit low.
        assert!((f - 2.0).abs() < 0.1, "flicker {f}");
        assert_eq!(flicker(&vec![still[0].clone(); 5]).unwrap(), 0.0);
    }

    #[test]
    fn measure_scores_identity_at_the_floor() {
        let sources = [smooth(64, 48)];
        let score = measure::<Error>(&sources, 5, |f, _| Ok(f.clone())).unwrap();
        assert_eq!(score.motions.len(), 4);
        for m in &score.motions {
            assert_eq!(m.input, m.output);
        }
        assert_eq!(score.flicker_input, score.flicker_output);
    }

    #[test]
    fn bad_sequences_are_refused() {
        let e = Sequence::new(&smooth(64, 64), Motion::Pan, 1).err().unwrap().to_string();
        assert!(e.contains("at least 2"), "{e}");
        let e = Sequence::new(&smooth(12, 64), Motion::Pan, 5).err().unwrap().to_string();
        assert!(e.contains("too small"), "{e}");
        let seq = Sequence::new(&smooth(64, 64), Motion::Zoom, 3).unwrap();
        let mut outputs = seq.frames.clone();
        outputs[2] = smooth(20, 20);
        let e = seq.warping_error(&outputs).unwrap_err().to_string();
        assert!(e.contains("changed mid-sequence"), "{e}");
    }
}
