//! Dataset archives into place: the reference layout (one top folder), archives without it,
//! and the damaged, incomplete and hostile ones, each refused with nothing left behind.
use std::io::Write;
use std::path::Path;

use cyclegan_hub::dataset::{SPLITS, check, unpack};
use zip::write::SimpleFileOptions;

fn png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(8, 6, |x, y| image::Rgb([x as u8 * 30, y as u8 * 40, 90]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A zip of `entries` (path, bytes).
fn archive(path: &Path, entries: &[(String, Vec<u8>)]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (name, bytes) in entries {
        zip.start_file(name.as_str(), SimpleFileOptions::default()).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

/// The reference layout: NAME/trainA/0.png ...; `counts` images per split.
fn dataset_entries(top: &str, counts: [usize; 4]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (split, n) in SPLITS.iter().zip(counts) {
        for i in 0..n {
            out.push((format!("{top}{split}/{i}.png"), png()));
        }
    }
    out.push((format!("__MACOSX/{top}trainA/._0.png"), b"litter".to_vec()));
    out
}

#[test]
fn the_reference_layout_unpacks_and_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("tiny.zip");
    archive(&zip, &dataset_entries("tiny/", [3, 2, 1, 2]));
    let root = dir.path().join("datasets");
    let got = unpack(&zip, &root, "tiny").unwrap();
    assert_eq!(got.dir, root.join("tiny"));
    assert_eq!(got.images, [3, 2, 1, 2]);
    assert_eq!(got.summary(), "trainA 3, trainB 2, testA 1, testB 2");
    assert_eq!(check(&root.join("tiny")).unwrap(), got);
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 1, "no staging folder left");
    let err = unpack(&zip, &root, "tiny").unwrap_err().to_string();
    assert!(err.contains("already exists"), "{err}");

    // Without the top folder, the same.
    let flat = dir.path().join("flat.zip");
    archive(&flat, &dataset_entries("", [1, 1, 1, 1]));
    assert_eq!(unpack(&flat, &root, "flat").unwrap().images, [1, 1, 1, 1]);
}

#[test]
fn damaged_incomplete_and_hostile_archives_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("datasets");
    let refused = |entries: Vec<(String, Vec<u8>)>, truncate: bool| {
        let zip = dir.path().join("x.zip");
        archive(&zip, &entries);
        if truncate {
            let bytes = std::fs::read(&zip).unwrap();
            std::fs::write(&zip, &bytes[..bytes.len() * 2 / 3]).unwrap();
        }
        let err = unpack(&zip, &root, "x").unwrap_err().to_string();
        assert!(!root.join("x").exists() && !root.join(".x.partial").exists(), "{err}");
        err
    };
    let err = refused(dataset_entries("x/", [2, 2, 2, 2]), true);
    assert!(err.contains("truncated download"), "{err}");
    let err = refused(dataset_entries("x/", [2, 2, 2, 0]), false);
    assert!(err.contains("no testB/ folder"), "{err}");
    let mut broken = dataset_entries("x/", [2, 2, 2, 2]);
    broken.push(("x/trainB/bad.jpg".into(), b"not a jpeg".to_vec()));
    let err = refused(broken, false);
    assert!(err.contains("bad.jpg is not a readable image"), "{err}");
    let mut escaping = dataset_entries("x/", [1, 1, 1, 1]);
    escaping.push(("../../outside.png".into(), png()));
    let err = refused(escaping, false);
    assert!(err.contains("points outside the folder"), "{err}");
    assert!(!dir.path().parent().unwrap().join("outside.png").exists());
}
