//! Quality as the field measures it: PSNR of a generator's translations of its source domain's
//! test images against the target domain's images of the same name (the synthetic dataset's
//! ground truth), FID/KID of translations against real images of
//! the target domain, and temporal consistency on sequences with known motion.
use std::path::Path;

use cyclegan_runtime::motion::{self, Rgb, TemporalScore};
use image::RgbImage;

use crate::data::{list_images, load_rgb};
use crate::error::{Error, Result};
use crate::fid::{self, Inception};
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

/// Mean PSNR over the source domain's test files (`root/testA` for a2b) that have a same-named
/// file in the target domain's (`root/testB`).
pub fn paired_psnr(t: &Translator, root: &Path) -> Result<PairedScore> {
    let (mut n, mut model, mut identity) = (0usize, 0.0, 0.0);
    let (source, target) = t.direction.order("testA", "testB");
    for a_path in list_images(&root.join(source), 0)? {
        let b_path = root.join(target).join(a_path.file_name().expect("a file"));
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
            "{} has no {source}/{target} pairs with the same names and sizes; PSNR needs ground truth \
             (datasets from `cyclegan-train synth` have it)",
            root.display()
        )));
    }
    Ok(PairedScore { images: n, psnr_model: model / n as f64, psnr_identity: identity / n as f64 })
}

/// The images FID/KID judges: a folder of them, or a generator's translations of a folder.
pub enum Fakes<'a> {
    Folder(&'a Path),
    Translated { translator: &'a Translator, input: &'a Path },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FidScore {
    pub fid: f64,
    pub kid: f64,
    pub real: usize,
    pub fake: usize,
    /// Images that were not 299x299 and were resized, as the reference does.
    pub resized: usize,
}

/// The images of `dir` (flag: the option that named it), at least two.
fn images_for_fid(dir: &Path, flag: &str) -> Result<Vec<RgbImage>> {
    let files = list_images(dir, 0)?;
    if files.len() < 2 {
        return Err(Error::InvalidValue {
            key: flag.into(),
            message: format!(
                "{} holds {} image(s); FID and KID need at least 2 (and mean little below a few hundred)",
                dir.display(),
                files.len()
            ),
        });
    }
    files.iter().map(|f| load_rgb(f)).collect()
}

/// FID and KID of `fakes` against the real images in `real`; `progress(done, total)` per image.
pub fn fid_kid(
    inception: &Inception,
    real: &Path,
    fakes: Fakes,
    mut progress: impl FnMut(usize, usize),
) -> Result<FidScore> {
    let real_images = images_for_fid(real, "--real")?;
    let fake_images = match fakes {
        Fakes::Folder(dir) => images_for_fid(dir, "--fake")?,
        Fakes::Translated { translator, input } => {
            images_for_fid(input, "--input")?.iter().map(|img| translator.image(img)).collect()
        }
    };
    let total = real_images.len() + fake_images.len();
    let resized = real_images.iter().chain(&fake_images).filter(|i| i.dimensions() != (299, 299)).count();
    let real_features = fid::features_of(inception, &real_images, |i| progress(i, total))?;
    let fake_features = fid::features_of(inception, &fake_images, |i| progress(real_images.len() + i, total))?;
    Ok(FidScore {
        fid: fid::fid(&real_features, &fake_features),
        kid: fid::kid(&real_features, &fake_features),
        real: real_images.len(),
        fake: fake_images.len(),
        resized,
    })
}

/// Warping error and still-scene flicker of `t` on sequences of `frames` frames made from (up
/// to `max_images` of) the images in `input`; `progress(done, total)` per sequence.
pub fn temporal(
    t: &Translator,
    input: &Path,
    frames: usize,
    max_images: usize,
    mut progress: impl FnMut(usize, usize),
) -> Result<TemporalScore> {
    let sources: Vec<Rgb> = list_images(input, max_images)?
        .iter()
        .map(|f| load_rgb(f).map(|i| Rgb::new(i.width() as usize, i.height() as usize, i.into_raw())))
        .collect::<Result<_>>()?;
    if sources.is_empty() {
        return Err(Error::InvalidValue {
            key: "--input".into(),
            message: format!("{} holds no images", input.display()),
        });
    }
    let sequences = sources.len() * (motion::Motion::ALL.len() + 1);
    let mut done = 0;
    motion::measure(&sources, frames, |frame, index| {
        if index == 0 {
            progress(done, sequences);
            done += 1;
        }
        let image = RgbImage::from_raw(frame.width as u32, frame.height as u32, frame.data.clone())
            .expect("a frame's buffer fits its size");
        let out = t.image(&image);
        Ok::<_, Error>(Rgb::new(out.width() as usize, out.height() as usize, out.into_raw()))
    })
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
