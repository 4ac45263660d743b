//! Lists and checks the images of both domains; pairs them as the reference `UnalignedDataset`.
use std::path::{Path, PathBuf};

use image::RgbImage;
use rand::Rng;

use super::transform::Augment;
use crate::error::{Error, Result};

const EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "webp", "bmp", "ppm"];

/// Image files directly in `dir`, sorted by name, at most `max` (0: all).
pub fn list_images(dir: &Path, max: usize) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Error::Dataset(format!("cannot read {}: {e}; it should hold the domain's images", dir.display()))
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();
    if max > 0 {
        files.truncate(max);
    }
    Ok(files)
}

/// Decodes any supported image (grayscale, RGBA, 16-bit ...) to 8-bit RGB.
pub fn load_rgb(path: &Path) -> Result<RgbImage> {
    let img = image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| Error::Image { path: path.into(), message: e.to_string() })?
        .decode()
        .map_err(|e| Error::Image { path: path.into(), message: e.to_string() })?;
    Ok(img.to_rgb8())
}

/// One domain's usable images and their sizes after the deterministic part of the transform.
#[derive(Debug, Clone)]
pub struct Domain {
    pub files: Vec<PathBuf>,
    pub sizes: Vec<(u32, u32)>,
}

impl Domain {
    /// Lists `dir` and decodes every image once on `threads` threads; unreadable ones are
    /// skipped with a warning, images the transform cannot use are errors.
    fn scan(dir: &Path, max: usize, augment: &Augment, threads: usize) -> Result<Self> {
        let files = list_images(dir, max)?;
        if files.is_empty() {
            return Err(Error::Dataset(format!(
                "{} has no images (looked for {}); put the domain's training images there",
                dir.display(),
                EXTENSIONS.join(", ")
            )));
        }
        // Decode in contiguous chunks, one per thread, so results come back in file order.
        let chunk = files.len().div_ceil(threads.max(1));
        let scanned: Vec<Result<(u32, u32)>> = std::thread::scope(|s| {
            let handles: Vec<_> = files
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || part.iter().map(|f| load_rgb(f).map(|i| i.dimensions())).collect::<Vec<_>>())
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().expect("image decoding panicked")).collect()
        });
        let mut domain = Domain { files: Vec::new(), sizes: Vec::new() };
        let mut skipped = Vec::new();
        for (path, scan) in files.into_iter().zip(scanned) {
            match scan {
                Ok((w, h)) => {
                    augment.check_size(w, h).map_err(|message| Error::Image { path: path.clone(), message })?;
                    domain.sizes.push(augment.output_size(w, h));
                    domain.files.push(path);
                }
                Err(e) => skipped.push(e.to_string()),
            }
        }
        if !skipped.is_empty() {
            eprintln!("warning: skipped {} unreadable image(s) in {}:", skipped.len(), dir.display());
            for s in skipped.iter().take(5) {
                eprintln!("  {s}");
            }
        }
        if domain.files.is_empty() {
            return Err(Error::Dataset(format!(
                "none of the {} image(s) in {} could be read",
                skipped.len(),
                dir.display()
            )));
        }
        Ok(domain)
    }
}

/// Domain A and domain B with the reference pairing: A in epoch order, B at random
/// (or in order with `serial`).
#[derive(Debug, Clone)]
pub struct UnalignedDataset {
    pub a: Domain,
    pub b: Domain,
    pub augment: Augment,
    pub serial: bool,
}

impl UnalignedDataset {
    /// Opens `root/{phase}A` and `root/{phase}B`.
    pub fn open(root: &Path, phase: &str, max: usize, augment: Augment, serial: bool, threads: usize) -> Result<Self> {
        if !root.is_dir() {
            return Err(Error::Dataset(format!(
                "data root {} does not exist; pass --dataroot with {phase}A/ and {phase}B/ inside \
                 (cyclegan-train synth --out DIR makes one)",
                root.display()
            )));
        }
        let a = Domain::scan(&root.join(format!("{phase}A")), max, &augment, threads)?;
        let b = Domain::scan(&root.join(format!("{phase}B")), max, &augment, threads)?;
        Ok(Self { a, b, augment, serial })
    }

    /// Only `root/{phase}{domain}` (`domain` "A" or "B"), standing in for both domains: what a
    /// job that reads one domain (distillation without an adversarial term) opens.
    pub fn open_one(
        root: &Path,
        phase: &str,
        domain: &str,
        max: usize,
        augment: Augment,
        serial: bool,
        threads: usize,
    ) -> Result<Self> {
        if !root.is_dir() {
            return Err(Error::Dataset(format!(
                "data root {} does not exist; pass --dataroot with {phase}{domain}/ inside",
                root.display()
            )));
        }
        let images = Domain::scan(&root.join(format!("{phase}{domain}")), max, &augment, threads)?;
        Ok(Self { a: images.clone(), b: images, augment, serial })
    }

    /// Samples per epoch: the larger domain's size.
    pub fn len(&self) -> usize {
        self.a.files.len().max(self.b.files.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Batches larger than one need every image of a domain to come out the same size.
    pub fn check_batchable(&self, batch_size: usize) -> Result<()> {
        if batch_size < 2 {
            return Ok(());
        }
        for (name, d) in [("A", &self.a), ("B", &self.b)] {
            if let Some(i) = d.sizes.iter().position(|s| *s != d.sizes[0]) {
                return Err(Error::Dataset(format!(
                    "data.batch_size {batch_size} needs images of one size, but in domain {name} {} is {:?} \
                     and {} is {:?}; use --preprocess resize_and_crop or --batch-size 1",
                    d.files[0].display(),
                    d.sizes[0],
                    d.files[i].display(),
                    d.sizes[i]
                )));
            }
        }
        Ok(())
    }

    /// Every image must come out at least `min` pixels on each side.
    pub fn check_min_side(&self, min: u32) -> Result<()> {
        for d in [&self.a, &self.b] {
            if let Some(i) = d.sizes.iter().position(|&(w, h)| w.min(h) < min) {
                return Err(Error::Image {
                    path: d.files[i].clone(),
                    message: format!(
                        "comes out {:?} after preprocessing, below the {min} pixels the discriminator needs; \
                         use a larger --load-size or fewer --n-layers-d",
                        d.sizes[i]
                    ),
                });
            }
        }
        Ok(())
    }

    /// The pair for position `i` of an epoch whose order maps positions to A indices.
    pub fn pair(&self, a_index: usize, position: usize, rng: &mut impl Rng) -> (usize, usize) {
        let a = a_index % self.a.files.len();
        let b = if self.serial { position % self.b.files.len() } else { rng.random_range(0..self.b.files.len()) };
        (a, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Preprocess;

    fn augment() -> Augment {
        Augment { preprocess: Preprocess::ResizeAndCrop, load_size: 20, crop_size: 16, flip: true }
    }

    #[test]
    fn reads_all_pixel_formats_and_skips_corrupt_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("trainA");
        let b = dir.path().join("trainB");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        image::GrayImage::new(20, 20).save(a.join("gray.png")).unwrap();
        image::RgbaImage::new(24, 20).save(a.join("rgba.png")).unwrap();
        image::ImageBuffer::<image::Rgb<u16>, Vec<u16>>::new(20, 22).save(a.join("deep.png")).unwrap();
        image::RgbImage::new(20, 20).save(a.join("plain.bmp")).unwrap();
        std::fs::write(a.join("broken.jpg"), b"not a jpeg").unwrap();
        std::fs::write(a.join("notes.txt"), b"ignored").unwrap();
        image::RgbImage::new(30, 20).save(b.join("b.webp")).unwrap();

        let ds = UnalignedDataset::open(dir.path(), "train", 0, augment(), false, 2).unwrap();
        assert_eq!(ds.a.files.len(), 4);
        assert_eq!(ds.len(), 4);
        let rgb = load_rgb(&a.join("deep.png")).unwrap();
        assert_eq!(rgb.dimensions(), (20, 22));
    }

    #[test]
    fn empty_or_missing_domains_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = UnalignedDataset::open(&dir.path().join("nope"), "train", 0, augment(), false, 1).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        std::fs::create_dir_all(dir.path().join("trainA")).unwrap();
        let err = UnalignedDataset::open(dir.path(), "train", 0, augment(), false, 1).unwrap_err().to_string();
        assert!(err.contains("trainA") && err.contains("no images"), "{err}");
    }

    #[test]
    fn only_corrupt_images_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        for d in ["trainA", "trainB"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
            std::fs::write(dir.path().join(d).join("x.png"), b"\x89PNG broken").unwrap();
        }
        let err = UnalignedDataset::open(dir.path(), "train", 0, augment(), false, 1).unwrap_err().to_string();
        assert!(err.contains("could be read"), "{err}");
    }

    #[test]
    fn too_small_for_the_crop_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        for d in ["trainA", "trainB"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
            image::RgbImage::new(10, 40).save(dir.path().join(d).join("small.png")).unwrap();
        }
        let aug = Augment { preprocess: Preprocess::Crop, ..augment() };
        let err = UnalignedDataset::open(dir.path(), "train", 0, aug, false, 1).unwrap_err().to_string();
        assert!(err.contains("small.png") && err.contains("crop_size"), "{err}");
    }
}
