//! Quality against a known answer: PSNR of G_A(testA) against testB images of the same name
//! (the synthetic dataset's ground truth).
use std::path::Path;

use image::RgbImage;

use crate::data::{list_images, load_rgb};
use crate::error::{Error, Result};
use crate::translate::Translator;

/// PSNR in dB between two 8-bit images of one size (infinite when equal).
pub fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions(), "PSNR needs images of one size");
    let n = a.as_raw().len() as f64;
    let mse = a.as_raw().iter().zip(b.as_raw()).map(|(&x, &y)| (x as f64 - y as f64).powi(2)).sum::<f64>() / n;
    10.0 * (255.0f64 * 255.0 / mse).log10()
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairedScore {
    pub images: usize,
    /// Mean PSNR of the translation against the truth.
    pub psnr_model: f64,
    /// Mean PSNR of the untranslated input against the truth: what doing nothing scores.
    pub psnr_identity: f64,
}

/// Mean PSNR over `root/testA` files that have a same-named file in `root/testB`.
pub fn paired_psnr(t: &Translator, root: &Path) -> Result<PairedScore> {
    let (mut n, mut model, mut identity) = (0usize, 0.0, 0.0);
    for a_path in list_images(&root.join("testA"), 0)? {
        let b_path = root.join("testB").join(a_path.file_name().expect("a file"));
        if !b_path.is_file() {
            continue;
        }
        let (a, b) = (load_rgb(&a_path)?, load_rgb(&b_path)?);
        if a.dimensions() != b.dimensions() {
            continue;
        }
        model += psnr(&t.image(&a), &b).min(100.0);
        identity += psnr(&a, &b).min(100.0);
        n += 1;
    }
    if n == 0 {
        return Err(Error::Dataset(format!(
            "{} has no testA/testB pairs with the same names and sizes; PSNR needs ground truth \
             (datasets from `cyclegan-train synth` have it)",
            root.display()
        )));
    }
    Ok(PairedScore { images: n, psnr_model: model / n as f64, psnr_identity: identity / n as f64 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psnr_of_a_known_error() {
        let a = RgbImage::from_pixel(4, 4, image::Rgb([100, 100, 100]));
        let b = RgbImage::from_pixel(4, 4, image::Rgb([110, 100, 100]));
        let expected = 10.0 * (255.0f64 * 255.0 / (100.0 / 3.0)).log10();
        assert!((psnr(&a, &b) - expected).abs() < 1e-9);
        assert!(psnr(&a, &a).is_infinite());
    }
}
