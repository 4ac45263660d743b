//! Calibration images: found, decoded, split into a calibration set and held-out images, and
//! turned into input tensors by the edge runtime's own preprocessing.
use std::path::{Path, PathBuf};

use cyclegan_runtime::preprocess::{InferenceSize, Preprocessor};

use crate::{Error, Result};

const EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "webp", "bmp", "ppm"];
/// At least this many images calibrate, and this many more measure the result.
pub const MIN_CALIBRATION: usize = 8;
pub const MIN_HELD_OUT: usize = 4;

/// One image as the generator sees it.
#[derive(Debug, Clone)]
pub struct Sample {
    pub path: PathBuf,
    /// `[1,3,H,W]` in [-1,1].
    pub tensor: Vec<f32>,
    pub shape: [usize; 4],
}

#[derive(Debug)]
pub struct Split {
    pub calibration: Vec<PathBuf>,
    pub held_out: Vec<PathBuf>,
    /// Files that are not images (by extension), skipped.
    pub skipped: Vec<PathBuf>,
}

/// The images in `dir` and the other files, both sorted.
fn scan(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::Images(format!("--images {}: cannot read the folder: {e}", dir.display())))?;
    let mut images = Vec::new();
    let mut skipped = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).unwrap_or_default();
        if EXTENSIONS.contains(&ext.as_str()) { images.push(path) } else { skipped.push(path) }
    }
    images.sort();
    skipped.sort();
    Ok((images, skipped))
}

/// The images in `dir`, sorted; at least one.
pub fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let (images, _) = scan(dir)?;
    if images.is_empty() {
        return Err(Error::Images(format!("--images {}: no images ({})", dir.display(), EXTENSIONS.join("/"))));
    }
    Ok(images)
}

/// Lists `dir` (sorted) and splits it: the last fifth (4 to 32 images) is held out, up to `num`
/// of the rest calibrate.
pub fn split(dir: &Path, num: usize) -> Result<Split> {
    let (mut images, skipped) = scan(dir)?;
    let needed = MIN_CALIBRATION + MIN_HELD_OUT;
    if images.len() < needed {
        let others = if skipped.is_empty() {
            String::new()
        } else {
            let names: Vec<String> = skipped
                .iter()
                .take(5)
                .map(|p| p.file_name().unwrap_or_default().to_string_lossy().into_owned())
                .collect();
            format!(
                " and {} other files ({}{})",
                skipped.len(),
                names.join(", "),
                if skipped.len() > 5 { ", ..." } else { "" }
            )
        };
        return Err(Error::Images(format!(
            "--images {}: found {} images ({}){others}; calibration needs at least {needed} \
             ({MIN_CALIBRATION} to calibrate, {MIN_HELD_OUT} held out to measure quality)",
            dir.display(),
            images.len(),
            EXTENSIONS.join("/"),
        )));
    }
    let held = (images.len() / 5).clamp(MIN_HELD_OUT, 32);
    let held_out = images.split_off(images.len() - held);
    images.truncate(num.max(1));
    Ok(Split { calibration: images, held_out, skipped })
}

/// Decodes `path` and preprocesses it exactly as the `cyclegan` element does.
pub fn load(path: &Path, size: InferenceSize, training_resolution: u32, pre: &mut Preprocessor) -> Result<Sample> {
    let img = image::open(path)
        .map_err(|e| {
            Error::Images(format!("{}: not a readable image ({e}); remove it from the folder", path.display()))
        })?
        .to_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (iw, ih) = size.resolve(w, h, training_resolution);
    let mut tensor = Vec::new();
    pre.to_tensor(img.as_raw(), (w, h), (iw, ih), &mut tensor);
    Ok(Sample { path: path.to_path_buf(), tensor, shape: [1, 3, ih, iw] })
}
