//! A season-like unpaired dataset with a known answer. Domain A ("summer") is procedurally drawn
//! landscapes: sky, sun, mountain ridges, meadows and trees. Domain B ("winter") is `winterize`
//! applied to other landscapes, so the two training sets are unpaired. `testB` holds
//! `winterize(testA)` under the same file names: the ground truth that PSNR(G_A(testA), testB)
//! measures a trained model against. Everything is generated here; no third-party content.
use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::imageio::save_png;

#[derive(Debug, Clone, Serialize)]
pub struct SynthOptions {
    pub train: usize,
    pub test: usize,
    pub size: u32,
    pub seed: u64,
}

impl Default for SynthOptions {
    fn default() -> Self {
        Self { train: 200, test: 20, size: 256, seed: 0 }
    }
}

fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

fn mix(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t]
}

/// The known mapping f from summer to winter, pixel by pixel: vegetation (green dominant)
/// turns to snow that keeps some shading, everything else cools and pales.
pub fn winterize_pixel(p: [u8; 3]) -> [u8; 3] {
    let [r, g, b] = p.map(|v| v as f32 / 255.0);
    let lum = 0.299 * r + 0.587 * g + 0.114 * b;
    let snow = smoothstep(0.02, 0.18, g - r.max(b));
    let grey = [lum, lum, lum];
    let cool = mix([r, g, b], grey, 0.35);
    let cool = [cool[0] * 0.9, cool[1] * 0.97, (cool[2] * 1.1 + 0.05).min(1.0)];
    let shade = 0.72 + 0.5 * lum;
    let white = [0.93 * shade, 0.95 * shade, 1.0 * shade];
    mix(cool, white, snow).map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
}

pub fn winterize(img: &RgbImage) -> RgbImage {
    RgbImage::from_fn(img.width(), img.height(), |x, y| Rgb(winterize_pixel(img.get_pixel(x, y).0)))
}

/// Smooth 1-D noise: a sum of random sines.
struct Ridge {
    waves: Vec<(f32, f32, f32)>,
    base: f32,
}

impl Ridge {
    fn new(rng: &mut StdRng, base: f32, roughness: f32) -> Self {
        let waves = (0..5)
            .map(|i| {
                let freq = (1.5 + rng.random::<f32>() * 2.0) * (1 << i) as f32;
                (freq, rng.random::<f32>() * std::f32::consts::TAU, roughness / (1 << i) as f32)
            })
            .collect();
        Self { waves, base }
    }

    fn at(&self, x: f32) -> f32 {
        self.base + self.waves.iter().map(|(f, p, a)| a * (f * x + p).sin()).sum::<f32>()
    }
}

/// Draws one summer landscape.
pub fn landscape(rng: &mut StdRng, size: u32) -> RgbImage {
    let s = size as f32;
    let horizon = 0.45 + rng.random::<f32>() * 0.2;
    let sky_top =
        [0.15 + rng.random::<f32>() * 0.15, 0.35 + rng.random::<f32>() * 0.2, 0.75 + rng.random::<f32>() * 0.2];
    let sky_low = mix(sky_top, [0.85, 0.9, 0.95], 0.6);
    let sun = (rng.random::<f32>(), 0.1 + rng.random::<f32>() * 0.2, 0.04 + rng.random::<f32>() * 0.04);
    let far = Ridge::new(rng, horizon - 0.15, 0.08);
    let near = Ridge::new(rng, horizon - 0.03, 0.05);
    let rock = [0.45 + rng.random::<f32>() * 0.15, 0.4 + rng.random::<f32>() * 0.1, 0.38 + rng.random::<f32>() * 0.1];
    let meadow = [0.2 + rng.random::<f32>() * 0.2, 0.5 + rng.random::<f32>() * 0.2, 0.15 + rng.random::<f32>() * 0.1];
    let field = Ridge::new(rng, 0.0, 0.5);
    let trees: Vec<(f32, f32, f32)> = (0..rng.random_range(3..12))
        .map(|_| {
            (rng.random::<f32>(), horizon + rng.random::<f32>() * (1.0 - horizon), 0.04 + rng.random::<f32>() * 0.06)
        })
        .collect();

    RgbImage::from_fn(size, size, |px, py| {
        let (x, y) = (px as f32 / s, py as f32 / s);
        let mut c = mix(sky_top, sky_low, (y / horizon).min(1.0));
        let d_sun = ((x - sun.0).powi(2) + (y - sun.1).powi(2)).sqrt();
        c = mix(c, [1.0, 0.95, 0.7], smoothstep(sun.2, sun.2 * 0.8, d_sun));
        if y > far.at(x) {
            c = mix(rock, sky_low, 0.45);
        }
        if y > near.at(x) {
            let shade = 0.85 + 0.15 * (x * 7.0).sin();
            c = rock.map(|v| v * shade);
        }
        if y > horizon {
            let depth = (y - horizon) / (1.0 - horizon);
            let texture = 0.85 + 0.15 * field.at(x * 3.0 + y * 5.0).sin();
            c = meadow.map(|v| v * (0.7 + 0.4 * depth) * texture);
        }
        for &(tx, ty, th) in &trees {
            let top = ty - th * 2.5;
            if y >= top && y <= ty && (x - tx).abs() <= (y - top) / 2.5 * 0.45 {
                c = [0.08, 0.32 + 0.1 * (1.0 - (y - top) / (ty - top)), 0.1];
            } else if y > ty && y <= ty + th * 0.4 && (x - tx).abs() < th * 0.08 {
                c = [0.35, 0.22, 0.1];
            }
        }
        Rgb(c.map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8))
    })
}

/// Writes `out/{trainA,trainB,testA,testB}` and `out/synth.json`; returns the folder.
pub fn generate(out: &Path, opts: &SynthOptions, mut progress: impl FnMut(usize, usize)) -> Result<PathBuf> {
    if opts.size < 16 || opts.train == 0 || opts.test == 0 {
        return Err(Error::InvalidValue {
            key: "synth".into(),
            message: "--size must be at least 16 and --train/--test at least 1".into(),
        });
    }
    for d in ["trainA", "trainB", "testA", "testB"] {
        let dir = out.join(d);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    }
    let total = 2 * opts.train + opts.test;
    let mut done = 0;
    // Separate streams keep trainA, trainB and test scenes disjoint.
    let scene = |stream: u64, i: usize| {
        let mut rng = StdRng::seed_from_u64(opts.seed.wrapping_mul(1_000_003) ^ (stream << 32) ^ i as u64);
        landscape(&mut rng, opts.size)
    };
    for i in 0..opts.train {
        save_png(&scene(1, i), &out.join("trainA").join(format!("{i:05}.png")))?;
        save_png(&winterize(&scene(2, i)), &out.join("trainB").join(format!("{i:05}.png")))?;
        done += 2;
        progress(done, total);
    }
    for i in 0..opts.test {
        let summer = scene(3, i);
        let name = format!("{i:05}.png");
        save_png(&summer, &out.join("testA").join(&name))?;
        save_png(&winterize(&summer), &out.join("testB").join(&name))?;
        done += 1;
        progress(done, total);
    }
    let info = serde_json::json!({
        "kind": "procedural summer -> winter landscapes",
        "mapping": "testB/NAME = winterize(testA/NAME): vegetation to snow, other colours cooled",
        "options": opts,
        "licence": "generated by cyclegan-train synth; contains no third-party material",
    });
    std::fs::write(out.join("synth.json"), serde_json::to_string_pretty(&info).expect("json"))
        .map_err(|e| Error::io(format!("cannot write {}", out.join("synth.json").display()), e))?;
    Ok(out.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn winter_turns_green_white_and_keeps_sky_blue() {
        let snow = winterize_pixel([60, 150, 40]);
        assert!(snow.iter().all(|&v| v > 170), "{snow:?}");
        let sky = winterize_pixel([60, 120, 220]);
        assert!(sky[2] > sky[0] && sky[2] > 150, "{sky:?}");
    }

    #[test]
    fn scenes_are_deterministic_varied_and_summer_green() {
        let a = landscape(&mut StdRng::seed_from_u64(1), 64);
        let b = landscape(&mut StdRng::seed_from_u64(1), 64);
        let c = landscape(&mut StdRng::seed_from_u64(2), 64);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let green = a.pixels().filter(|p| p.0[1] as i32 - (p.0[0].max(p.0[2]) as i32) > 20).count();
        assert!(green > 64 * 64 / 10, "only {green} green pixels");
    }

    #[test]
    fn writes_the_reference_layout_with_paired_test_truth() {
        let dir = tempfile::tempdir().unwrap();
        let opts = SynthOptions { train: 3, test: 2, size: 32, seed: 5 };
        generate(dir.path(), &opts, |_, _| {}).unwrap();
        for (d, n) in [("trainA", 3), ("trainB", 3), ("testA", 2), ("testB", 2)] {
            assert_eq!(std::fs::read_dir(dir.path().join(d)).unwrap().count(), n, "{d}");
        }
        let a = image::open(dir.path().join("testA/00001.png")).unwrap().to_rgb8();
        let b = image::open(dir.path().join("testB/00001.png")).unwrap().to_rgb8();
        assert_eq!(winterize(&a), b);
    }
}
