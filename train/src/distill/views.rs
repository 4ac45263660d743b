//! Distillation as function matching (Beyer et al. 2022, "Knowledge distillation: A good teacher
//! is patient and consistent"): the teacher labels any input, so teacher and student are shown
//! the same view of each batch — by default a dead-leaves image in place of a share of the
//! dataset's; on request a random resized crop, a flip, colour jitter, a mix with another image,
//! or an unlabelled image from elsewhere — and the student learns the teacher's function where
//! the dataset alone never shows it. Every draw comes from the step's random stream, so a resumed
//! run sees the same views; with every view off no draw is made and the batch is used as it is.
use std::path::{Path, PathBuf};

use rand::Rng;
use rand::rngs::StdRng;
use tch::{Kind, Tensor};

use super::dead_leaves::dead_leaves;
use crate::config::DistillConfig;
use crate::data::{Augment, list_images, load_rgb};
use crate::error::{Error, Result};
use crate::imageio::rgb_to_tensor;

/// The strongest saturation view: factors up to 1 + this (past it every colour is pure anyway).
pub const MAX_SATURATION: f64 = 4.0;

/// The views of `[distill]`, and the images mixup and the extra share draw from.
pub struct Views {
    brightness: f64,
    contrast: f64,
    saturation: f64,
    hue: f64,
    crop_scale: f64,
    flip: f64,
    mixup: f64,
    dead_leaves: f64,
    extra_share: f64,
    /// The source domain's training images (mixup partners).
    source: Vec<PathBuf>,
    /// `extra_images`' images.
    extra: Vec<PathBuf>,
    augment: Augment,
}

impl Views {
    /// The views `d` asks for; `source_dir` holds the source domain's training images.
    pub fn new(d: &DistillConfig, source_dir: &Path, augment: Augment) -> Result<Self> {
        let within = |key: &str, v: f64, max: f64| {
            if (0.0..=max).contains(&v) {
                Ok(v)
            } else {
                Err(Error::InvalidValue {
                    key: format!("--{} (distill.{key})", key.replace('_', "-")),
                    message: format!("{v} is outside 0 to {max}"),
                })
            }
        };
        // A saturation factor may go well past 2: photos far more colourful than the dataset's.
        within("view_saturation", d.view_saturation, MAX_SATURATION)?;
        for (key, v) in [
            ("view_brightness", d.view_brightness),
            ("view_contrast", d.view_contrast),
            ("view_hue", d.view_hue),
            ("view_crop_scale", d.view_crop_scale),
            ("view_flip", d.view_flip),
            ("view_mixup", d.view_mixup),
            ("view_dead_leaves", d.view_dead_leaves),
            ("extra_share", d.extra_share),
        ] {
            within(key, v, 1.0)?;
        }
        if d.view_crop_scale == 0.0 {
            return Err(Error::InvalidValue {
                key: "--view-crop-scale (distill.view_crop_scale)".into(),
                message: "0 leaves no crop: give the smallest share of the image a crop keeps (1: no crops)".into(),
            });
        }
        let mut extra = Vec::new();
        for dir in &d.extra_images {
            let found = list_images(dir, 0).map_err(|e| Error::InvalidValue {
                key: "--extra-images (distill.extra_images)".into(),
                message: e.to_string(),
            })?;
            if found.is_empty() {
                return Err(Error::InvalidValue {
                    key: "--extra-images (distill.extra_images)".into(),
                    message: format!("{} holds no images", dir.display()),
                });
            }
            for file in &found {
                // As the dataset does: an image the transform cannot take is named now, not
                // met mid-run.
                let (w, h) = image::image_dimensions(file)
                    .map_err(|e| Error::Image { path: file.clone(), message: e.to_string() })?;
                augment.check_size(w, h).map_err(|message| Error::Image { path: file.clone(), message })?;
            }
            extra.extend(found);
        }
        let source = if d.view_mixup > 0.0 { list_images(source_dir, 0)? } else { Vec::new() };
        Ok(Self {
            brightness: d.view_brightness,
            contrast: d.view_contrast,
            saturation: d.view_saturation,
            hue: d.view_hue,
            crop_scale: d.view_crop_scale,
            flip: d.view_flip,
            mixup: d.view_mixup,
            dead_leaves: d.view_dead_leaves,
            extra_share: if extra.is_empty() { 0.0 } else { d.extra_share },
            source,
            extra,
            augment,
        })
    }

    /// The view of `batch` ([N, 3, H, W] in [-1, 1]) that teacher and student both see.
    pub fn apply(&self, batch: &Tensor, rng: &mut StdRng) -> Result<Tensor> {
        let views =
            (0..batch.size()[0]).map(|i| self.view(&batch.narrow(0, i, 1), rng)).collect::<Result<Vec<Tensor>>>()?;
        Ok(if views.len() == 1 { views.into_iter().next().expect("one") } else { Tensor::cat(&views, 0) })
    }

    fn view(&self, image: &Tensor, rng: &mut StdRng) -> Result<Tensor> {
        let size = image.size();
        let (h, w) = (size[2], size[3]);
        let mut x = image.shallow_clone();
        if self.extra_share > 0.0 && rng.random_bool(self.extra_share) {
            x = self.load(&self.extra, rng, (h, w), image)?;
        } else if self.dead_leaves > 0.0 && rng.random_bool(self.dead_leaves) {
            x = dead_leaves(h, w, rng).to_device(image.device()).to_kind(image.kind());
        }
        if self.crop_scale < 1.0 {
            x = random_resized_crop(&x, self.crop_scale, rng);
        }
        if self.flip > 0.0 && rng.random_bool(self.flip) {
            x = x.flip([3]);
        }
        if self.mixup > 0.0 && rng.random_bool(self.mixup) {
            let other = self.load(&self.source, rng, (h, w), image)?;
            let lambda: f64 = rng.random_range(0.0..1.0);
            x = &x * lambda + other * (1.0 - lambda);
        }
        if self.brightness > 0.0 || self.contrast > 0.0 || self.saturation > 0.0 || self.hue > 0.0 {
            x = self.jitter(&x, rng);
        }
        Ok(x)
    }

    /// One of `files`, through the dataset's own transform, at `size`, on `like`'s device.
    fn load(&self, files: &[PathBuf], rng: &mut StdRng, (h, w): (i64, i64), like: &Tensor) -> Result<Tensor> {
        let file = &files[rng.random_range(0..files.len())];
        let img = self.augment.apply(load_rgb(file)?, rng);
        let t = rgb_to_tensor(&img).to_device(like.device()).to_kind(like.kind());
        let t_size = t.size();
        Ok(if (t_size[2], t_size[3]) == (h, w) { t } else { resize(&t, h, w) })
    }

    /// Brightness, contrast, saturation and hue, each drawn within its strength, in a random
    /// order as torchvision's ColorJitter applies them.
    fn jitter(&self, x: &Tensor, rng: &mut StdRng) -> Tensor {
        let mut order = [0usize, 1, 2, 3];
        for i in (1..4).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        // As torchvision's: within 1 +- strength, never below 0.
        let factor = |strength: f64, rng: &mut StdRng| rng.random_range((1.0 - strength).max(0.0)..=1.0 + strength);
        // In [0, 1], where the adjustments are defined.
        let mut p = (x + 1.0) * 0.5;
        for op in order {
            p = match op {
                0 if self.brightness > 0.0 => p * factor(self.brightness, rng),
                1 if self.contrast > 0.0 => {
                    let mean = luma(&p).mean(Kind::Float);
                    (&p - &mean) * factor(self.contrast, rng) + &mean
                }
                2 if self.saturation > 0.0 => {
                    let gray = luma(&p);
                    (&p - &gray) * factor(self.saturation, rng) + &gray
                }
                3 if self.hue > 0.0 => rotate_hue(&p, rng.random_range(-self.hue..=self.hue)),
                _ => p,
            }
            .clamp(0.0, 1.0);
        }
        p * 2.0 - 1.0
    }
}

/// Rec. 601 luma of [N, 3, H, W] as [N, 1, H, W].
fn luma(p: &Tensor) -> Tensor {
    let w = Tensor::from_slice(&[0.299f32, 0.587, 0.114]).to_device(p.device()).to_kind(p.kind()).view([1, 3, 1, 1]);
    (p * w).sum_dim_intlist(1, true, p.kind())
}

/// Rotates the hue by `turns` of a full turn: a rotation of the chroma plane of YIQ.
fn rotate_hue(p: &Tensor, turns: f64) -> Tensor {
    let (s, c) = (turns * std::f64::consts::TAU).sin_cos();
    // RGB -> YIQ, the rotation, YIQ -> RGB.
    let to_yiq = [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]];
    let to_rgb = [[1.0, 0.956, 0.621], [1.0, -0.272, -0.647], [1.0, -1.106, 1.703]];
    let rot = [[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]];
    let mul = |a: &[[f64; 3]; 3], b: &[[f64; 3]; 3]| {
        let mut m = [[0.0; 3]; 3];
        for (i, row) in m.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = (0..3).map(|k| a[i][k] * b[k][j]).sum();
            }
        }
        m
    };
    let m = mul(&to_rgb, &mul(&rot, &to_yiq));
    let flat: Vec<f32> = m.iter().flatten().map(|&v| v as f32).collect();
    let m = Tensor::from_slice(&flat).to_device(p.device()).to_kind(p.kind()).view([3, 3]);
    Tensor::einsum("ij,njhw->nihw", &[m, p.shallow_clone()], None::<i64>)
}

/// A crop of a random share of the area (at least `min_scale`) and aspect ratio (3:4 to 4:3),
/// resized back to the image's size.
fn random_resized_crop(x: &Tensor, min_scale: f64, rng: &mut StdRng) -> Tensor {
    let size = x.size();
    let (h, w) = (size[2], size[3]);
    let scale = rng.random_range(min_scale..=1.0);
    let aspect = rng.random_range((3.0f64 / 4.0).ln()..=(4.0f64 / 3.0).ln()).exp();
    let area = scale * (h * w) as f64;
    let cw = ((area * aspect).sqrt().round() as i64).clamp(1, w);
    let ch = ((area / aspect).sqrt().round() as i64).clamp(1, h);
    let (y0, x0) = (rng.random_range(0..=h - ch), rng.random_range(0..=w - cw));
    resize(&x.narrow(2, y0, ch).narrow(3, x0, cw), h, w)
}

fn resize(x: &Tensor, h: i64, w: i64) -> Tensor {
    x.upsample_bilinear2d([h, w], false, None, None)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::config::Preprocess;

    fn views(d: &DistillConfig) -> Views {
        let augment = Augment { preprocess: Preprocess::None, load_size: 32, crop_size: 32, flip: false };
        Views::new(d, Path::new("/nonexistent"), augment).unwrap()
    }

    fn off() -> DistillConfig {
        DistillConfig {
            view_brightness: 0.0,
            view_contrast: 0.0,
            view_saturation: 0.0,
            view_hue: 0.0,
            view_crop_scale: 1.0,
            view_flip: 0.0,
            view_mixup: 0.0,
            view_dead_leaves: 0.0,
            ..Default::default()
        }
    }

    fn batch() -> Tensor {
        tch::manual_seed(3);
        Tensor::rand([2, 3, 24, 32], (Kind::Float, tch::Device::Cpu)) * 2.0 - 1.0
    }

    #[test]
    fn with_every_view_off_the_batch_is_used_as_it_is_and_nothing_is_drawn() {
        let (x, v) = (batch(), views(&off()));
        let mut rng = StdRng::seed_from_u64(1);
        let y = v.apply(&x, &mut rng).unwrap();
        assert!(y.equal(&x));
        let next: u64 = rng.random();
        assert_eq!(next, StdRng::seed_from_u64(1).random::<u64>(), "a draw was made");
    }

    #[test]
    fn each_view_changes_the_image_within_its_range_and_repeats_with_the_stream() {
        let x = batch();
        let cases = [
            DistillConfig { view_brightness: 0.5, ..off() },
            DistillConfig { view_contrast: 0.5, ..off() },
            DistillConfig { view_saturation: 0.5, ..off() },
            DistillConfig { view_saturation: 3.0, ..off() },
            DistillConfig { view_hue: 0.25, ..off() },
            DistillConfig { view_crop_scale: 0.3, ..off() },
            DistillConfig { view_flip: 1.0, ..off() },
            DistillConfig { view_dead_leaves: 1.0, ..off() },
        ];
        for d in cases {
            let v = views(&d);
            let y = v.apply(&x, &mut StdRng::seed_from_u64(9)).unwrap();
            assert_eq!(y.size(), x.size());
            assert!(!y.allclose(&x, 1e-3, 1e-3, false), "{d:?} left the batch as it was");
            let (lo, hi) = (y.min().double_value(&[]), y.max().double_value(&[]));
            assert!((-1.0 - 1e-5..=1.0 + 1e-5).contains(&lo) && hi <= 1.0 + 1e-5, "{d:?}: {lo}..{hi}");
            assert!(y.equal(&v.apply(&x, &mut StdRng::seed_from_u64(9)).unwrap()), "{d:?} is not repeatable");
        }
        // A flip is exact; hue rotation keeps gray pixels gray.
        let flipped = views(&DistillConfig { view_flip: 1.0, ..off() }).apply(&x, &mut StdRng::seed_from_u64(0));
        assert!(flipped.unwrap().equal(&x.flip([3])));
        let gray = Tensor::full([1, 3, 4, 4], 0.25, (Kind::Float, tch::Device::Cpu));
        let turned = rotate_hue(&((&gray + 1.0) * 0.5), 0.3) * 2.0 - 1.0;
        assert!(turned.allclose(&gray, 1e-3, 1e-3, false));
    }

    #[test]
    fn a_strong_saturation_view_makes_dull_colours_vivid() {
        // A dull image (chroma 0.05 around mid gray): factors past 2 occur, up to 1 + 3.
        let dull = Tensor::from_slice(&[0.1f32, -0.1, 0.0]).view([1, 3, 1, 1]).repeat([1, 1, 4, 4]);
        let v = views(&DistillConfig { view_saturation: 3.0, ..off() });
        let gain = |seed| {
            let y = v.apply(&dull, &mut StdRng::seed_from_u64(seed)).unwrap();
            let chroma = |t: &Tensor| (t.get(0).get(0) - t.get(0).get(1)).mean(Kind::Float).double_value(&[]);
            chroma(&y) / chroma(&dull)
        };
        let gains: Vec<f64> = (0..40).map(gain).collect();
        let max = gains.iter().cloned().fold(0.0, f64::max);
        assert!(max > 3.0 && max <= 4.0 + 1e-4, "{gains:?}");
        assert!(gains.iter().all(|&g| g >= -1e-4), "{gains:?}");
    }

    #[test]
    fn mixup_and_extra_images_draw_from_folders_and_bad_settings_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let (source, extra) = (dir.path().join("trainA"), dir.path().join("photos"));
        for (folder, colour) in [(&source, [255u8, 0, 0]), (&extra, [0, 0, 255])] {
            std::fs::create_dir_all(folder).unwrap();
            image::RgbImage::from_pixel(40, 30, image::Rgb(colour)).save(folder.join("a.png")).unwrap();
        }
        let augment = Augment { preprocess: Preprocess::None, load_size: 32, crop_size: 32, flip: false };
        let black = Tensor::full([1, 3, 24, 32], -1.0, (Kind::Float, tch::Device::Cpu));
        // Always an extra image: blue everywhere.
        let d = DistillConfig { extra_images: vec![extra.clone()], extra_share: 1.0, ..off() };
        let y = Views::new(&d, &source, augment).unwrap().apply(&black, &mut StdRng::seed_from_u64(2)).unwrap();
        assert!((y.get(0).get(2).mean(Kind::Float).double_value(&[]) - 1.0).abs() < 1e-5);
        // Always mixed with the (red) source image: red rises from black, blue stays.
        let d = DistillConfig { view_mixup: 1.0, ..off() };
        let y = Views::new(&d, &source, augment).unwrap().apply(&black, &mut StdRng::seed_from_u64(2)).unwrap();
        assert!(y.get(0).get(0).mean(Kind::Float).double_value(&[]) > -1.0);
        assert!((y.get(0).get(2).mean(Kind::Float).double_value(&[]) + 1.0).abs() < 1e-5);

        let empty = dir.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let err = |d: DistillConfig| Views::new(&d, &source, augment).err().unwrap().to_string();
        assert!(err(DistillConfig { extra_images: vec![empty], ..off() }).contains("holds no images"));
        assert!(err(DistillConfig { extra_images: vec![dir.path().join("none")], ..off() }).contains("extra-images"));
        assert!(err(DistillConfig { view_hue: 1.5, ..off() }).contains("--view-hue"));
        assert!(err(DistillConfig { view_saturation: 4.5, ..off() }).contains("--view-saturation"));
        assert!(err(DistillConfig { view_dead_leaves: 1.5, ..off() }).contains("--view-dead-leaves"));
        let crop = Augment { preprocess: Preprocess::Crop, load_size: 64, crop_size: 64, flip: false };
        let small = Views::new(&DistillConfig { extra_images: vec![extra.clone()], ..off() }, &source, crop);
        let small = small.err().unwrap().to_string();
        assert!(small.contains("a.png") && small.contains("smaller than data.crop_size"), "{small}");
        assert!(err(DistillConfig { view_crop_scale: 0.0, ..off() }).contains("--view-crop-scale"));
    }
}
