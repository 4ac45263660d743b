//! Resize, crop and flip as the reference `get_transform`, then HWC u8 to CHW floats in [-1, 1].
use image::RgbImage;
use image::imageops::{self, FilterType};
use rand::Rng;

use crate::config::{DataConfig, Preprocess};

#[derive(Debug, Clone, Copy)]
pub struct Augment {
    pub preprocess: Preprocess,
    pub load_size: u32,
    pub crop_size: u32,
    pub flip: bool,
}

impl Augment {
    pub fn from_config(c: &DataConfig) -> Self {
        Self { preprocess: c.preprocess, load_size: c.load_size, crop_size: c.crop_size, flip: !c.no_flip }
    }

    /// The size an image of `w` x `h` has after the deterministic part of the transform.
    pub fn output_size(&self, w: u32, h: u32) -> (u32, u32) {
        match self.preprocess {
            Preprocess::ResizeAndCrop | Preprocess::Crop => (self.crop_size, self.crop_size),
            Preprocess::ScaleWidth => {
                let (sw, sh) = self.scaled_width(w, h);
                (round4(sw), round4(sh))
            }
            Preprocess::None => (round4(w), round4(h)),
        }
    }

    /// Why an image of this size cannot be used, if it cannot.
    pub fn check_size(&self, w: u32, h: u32) -> Result<(), String> {
        match self.preprocess {
            Preprocess::Crop if w < self.crop_size || h < self.crop_size => Err(format!(
                "{w}x{h} is smaller than data.crop_size {c}x{c}; use preprocess resize_and_crop or a smaller --crop-size",
                c = self.crop_size
            )),
            Preprocess::None if w < 4 || h < 4 => Err(format!("{w}x{h} is too small to translate")),
            _ => Ok(()),
        }
    }

    fn scaled_width(&self, w: u32, h: u32) -> (u32, u32) {
        let tw = self.load_size;
        let th = ((tw as u64 * h as u64) / w as u64).max(self.crop_size as u64) as u32;
        (tw, th)
    }

    pub fn apply(&self, img: RgbImage, rng: &mut impl Rng) -> RgbImage {
        let mut img = match self.preprocess {
            Preprocess::ResizeAndCrop => {
                let resized = resize(&img, self.load_size, self.load_size);
                random_crop(&resized, self.crop_size, rng)
            }
            Preprocess::Crop => random_crop(&img, self.crop_size, rng),
            Preprocess::ScaleWidth => {
                let (w, h) = self.scaled_width(img.width(), img.height());
                let img = resize(&img, w, h);
                resize(&img, round4(w), round4(h))
            }
            Preprocess::None => resize(&img, round4(img.width()), round4(img.height())),
        };
        if self.flip && rng.random_bool(0.5) {
            imageops::flip_horizontal_in_place(&mut img);
        }
        img
    }
}

/// Rounds down to a multiple of 4 (the generator halves the size twice).
fn round4(v: u32) -> u32 {
    (v / 4 * 4).max(4)
}

fn resize(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    if img.dimensions() == (w, h) { img.clone() } else { imageops::resize(img, w, h, FilterType::CatmullRom) }
}

fn random_crop(img: &RgbImage, size: u32, rng: &mut impl Rng) -> RgbImage {
    let x = rng.random_range(0..=img.width() - size);
    let y = rng.random_range(0..=img.height() - size);
    imageops::crop_imm(img, x, y, size, size).to_image()
}

/// Appends the image as planar RGB floats in [-1, 1] (x / 127.5 - 1).
pub fn to_chw(img: &RgbImage, out: &mut Vec<f32>) {
    let plane = (img.width() * img.height()) as usize;
    let start = out.len();
    out.resize(start + 3 * plane, 0.0);
    let dst = &mut out[start..];
    for (i, p) in img.pixels().enumerate() {
        for c in 0..3 {
            dst[c * plane + i] = p.0[c] as f32 / 127.5 - 1.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn aug(preprocess: Preprocess) -> Augment {
        Augment { preprocess, load_size: 40, crop_size: 32, flip: false }
    }

    #[test]
    fn sizes_follow_the_preprocess_mode() {
        let mut rng = StdRng::seed_from_u64(0);
        let img = RgbImage::new(50, 30);
        assert_eq!(aug(Preprocess::ResizeAndCrop).apply(img.clone(), &mut rng).dimensions(), (32, 32));
        assert_eq!(aug(Preprocess::None).apply(img.clone(), &mut rng).dimensions(), (48, 28));
        assert_eq!(aug(Preprocess::ScaleWidth).apply(img.clone(), &mut rng).dimensions(), (40, 32));
        assert_eq!(aug(Preprocess::ScaleWidth).output_size(50, 30), (40, 32));
        assert!(aug(Preprocess::Crop).check_size(50, 30).is_err());
        assert_eq!(aug(Preprocess::Crop).apply(RgbImage::new(40, 33), &mut rng).dimensions(), (32, 32));
    }

    #[test]
    fn crop_is_a_window_of_the_source() {
        let mut rng = StdRng::seed_from_u64(1);
        let img = RgbImage::from_fn(40, 40, |x, y| image::Rgb([x as u8, y as u8, 0]));
        let out = aug(Preprocess::Crop).apply(img, &mut rng);
        let p = out.get_pixel(0, 0).0;
        assert_eq!(out.get_pixel(5, 7).0, [p[0] + 5, p[1] + 7, 0]);
    }

    #[test]
    fn flip_mirrors_rows() {
        let img = RgbImage::from_fn(8, 4, |x, _| image::Rgb([x as u8, 0, 0]));
        let a = Augment { flip: true, ..aug(Preprocess::None) };
        let flipped = (0..20)
            .map(|s| a.apply(img.clone(), &mut StdRng::seed_from_u64(s)))
            .find(|o| o.get_pixel(0, 0).0[0] == 7)
            .expect("flip never happened in 20 draws");
        assert_eq!(flipped.get_pixel(7, 0).0[0], 0);
    }

    #[test]
    fn normalises_to_minus_one_one_planar() {
        let img = RgbImage::from_fn(2, 1, |x, _| image::Rgb([0, 255, if x == 0 { 51 } else { 204 }]));
        let mut v = Vec::new();
        to_chw(&img, &mut v);
        assert_eq!(v.len(), 6);
        assert_eq!(&v[0..4], &[-1.0, -1.0, 1.0, 1.0]);
        assert!((v[4] - (51.0 / 127.5 - 1.0)).abs() < 1e-7);
    }
}
