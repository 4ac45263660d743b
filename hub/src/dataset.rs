//! An unpaired dataset archive into `ROOT/NAME/{trainA,trainB,testA,testB}`: unpacked into a
//! staging folder, every image checked readable, then renamed into place, so that `ROOT/NAME`
//! exists only complete.
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use crate::{Error, Result};

/// The folders of an unpaired dataset, as the reference project lays them out.
pub const SPLITS: [&str; 4] = ["trainA", "trainB", "testA", "testB"];

/// File types counted as images (what `cyclegan-train` reads).
const IMAGE_EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "bmp", "webp"];

/// A dataset in place: its folder and the images in each of [`SPLITS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    pub dir: PathBuf,
    pub images: [usize; 4],
}

impl Unpacked {
    /// `trainA 1231, trainB 962, testA 309, testB 238`.
    pub fn summary(&self) -> String {
        SPLITS.iter().zip(self.images).map(|(s, n)| format!("{s} {n}")).collect::<Vec<_>>().join(", ")
    }
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Checks that `dir` is a dataset: each split a folder with at least one image, every image's
/// header readable.
pub fn check(dir: &Path) -> Result<Unpacked> {
    let bad = |message: String| Error::Archive { path: dir.to_path_buf(), message };
    let mut images = [0; 4];
    for (split, count) in SPLITS.iter().zip(&mut images) {
        let folder = dir.join(split);
        let entries = std::fs::read_dir(&folder)
            .map_err(|_| bad(format!("has no {split}/ folder: not an unpaired dataset ({})", SPLITS.join(", "))))?;
        for entry in entries {
            let path = entry.map_err(|e| Error::io(&folder, "cannot list it", e))?.path();
            if !is_image(&path) {
                continue;
            }
            image::image_dimensions(&path)
                .map_err(|e| bad(format!("{} is not a readable image: {e}", path.display())))?;
            *count += 1;
        }
        if *count == 0 {
            return Err(bad(format!("{split}/ holds no images")));
        }
    }
    Ok(Unpacked { dir: dir.to_path_buf(), images })
}

/// Entries that are not part of the data (macOS archive litter).
fn is_litter(path: &Path) -> bool {
    path.components().any(|c| {
        let s = c.as_os_str().to_string_lossy();
        s == "__MACOSX" || s == ".DS_Store" || s.starts_with("._")
    })
}

/// The archive's entries as (index, path inside the dataset): the reference archives hold one
/// top folder named after the dataset, which is dropped; entries that would land outside the
/// dataset are refused.
fn entries(archive: &mut zip::ZipArchive<std::fs::File>, zip_path: &Path) -> Result<Vec<(usize, PathBuf)>> {
    let bad = |message: String| Error::Archive { path: zip_path.to_path_buf(), message };
    let mut out = Vec::new();
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(|e| bad(format!("entry {i} is unreadable: {e}")))?;
        if entry.is_dir() {
            continue;
        }
        let path =
            entry.enclosed_name().ok_or_else(|| bad(format!("entry {:?} points outside the folder", entry.name())))?;
        if !is_litter(&path) {
            out.push((i, path));
        }
    }
    let top = |p: &PathBuf| match p.components().next() {
        Some(Component::Normal(c)) if p.components().count() > 1 => Some(c.to_os_string()),
        _ => None,
    };
    let first = out.first().and_then(|(_, p)| top(p));
    if let Some(first) = first
        && !SPLITS.iter().any(|s| first == *s)
        && out.iter().all(|(_, p)| top(p).as_ref() == Some(&first))
    {
        for (_, p) in &mut out {
            *p = p.strip_prefix(&first).expect("checked above").to_path_buf();
        }
    }
    Ok(out)
}

/// Unpacks `zip_path` into `root/name` and checks it. `root/name` must not exist yet.
pub fn unpack(zip_path: &Path, root: &Path, name: &str) -> Result<Unpacked> {
    let target = root.join(name);
    if target.exists() {
        return Err(Error::Invalid(format!("{} already exists: remove it to unpack again", target.display())));
    }
    std::fs::create_dir_all(root).map_err(|e| Error::io(root, "cannot create this folder", e))?;
    let staging = root.join(format!(".{name}.partial"));
    if staging.exists() {
        std::fs::remove_dir_all(&staging)
            .map_err(|e| Error::io(&staging, "cannot remove an earlier unfinished unpack", e))?;
    }
    let result = unpack_into(zip_path, &staging).and_then(|()| check(&staging));
    match result {
        Ok(mut unpacked) => {
            std::fs::rename(&staging, &target)
                .map_err(|e| Error::io(&target, "cannot move the dataset into place", e))?;
            unpacked.dir = target;
            Ok(unpacked)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(e)
        }
    }
}

fn unpack_into(zip_path: &Path, staging: &Path) -> Result<()> {
    let bad = |message: String| Error::Archive { path: zip_path.to_path_buf(), message };
    let file = std::fs::File::open(zip_path).map_err(|e| Error::io(zip_path, "cannot read it", e))?;
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| bad(format!("not a readable zip archive ({e}); a truncated download looks like this")))?;
    for (i, path) in entries(&mut archive, zip_path)? {
        let out = staging.join(&path);
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "cannot create this folder", e))?;
        }
        let mut entry = archive.by_index(i).map_err(|e| bad(format!("{}: {e}", path.display())))?;
        let mut bytes = Vec::with_capacity(entry.size().min(1 << 26) as usize);
        // Reading to the end checks the entry's CRC-32.
        entry.read_to_end(&mut bytes).map_err(|e| bad(format!("{} is damaged: {e}", path.display())))?;
        std::fs::write(&out, &bytes).map_err(|e| Error::io(&out, "cannot write it", e))?;
    }
    Ok(())
}
