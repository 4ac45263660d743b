//! `cyclegan-train datasets get` against a local HTTP server standing in for the reference
//! project's (through $CYCLEGAN_MIRROR), serving zips that Python's zipfile made in the
//! reference layout: unpacked and counted; a truncated archive and a licensed dataset refused
//! with nothing left behind.
mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::http_server::HttpServer;

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `www/datasets/NAME.zip` holding NAME/{trainA,trainB,testA,testB} with `counts` PNGs each.
fn zip_dataset(www: &Path, name: &str, counts: [usize; 4]) {
    let src = www.join("src").join(name);
    for (split, n) in ["trainA", "trainB", "testA", "testB"].iter().zip(counts) {
        std::fs::create_dir_all(src.join(split)).unwrap();
        for i in 0..n {
            let img =
                image::RgbImage::from_fn(16, 12, |x, y| image::Rgb([(x * 15) as u8, (y * 20) as u8, i as u8 * 40]));
            img.save(src.join(split).join(format!("{i}.jpg"))).unwrap();
        }
    }
    std::fs::create_dir_all(www.join("datasets")).unwrap();
    let script = "import shutil, sys; shutil.make_archive(sys.argv[1], 'zip', sys.argv[2], sys.argv[3])";
    let out = Command::new(common::python())
        .args(["-c", script])
        .arg(www.join("datasets").join(name))
        .arg(www.join("src"))
        .arg(name)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_dataset_is_fetched_unpacked_and_checked_and_bad_ones_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let www = d.join("www");
    zip_dataset(&www, "horse2zebra", [3, 2, 2, 1]);
    zip_dataset(&www, "apple2orange", [2, 2, 2, 2]);
    let apple = www.join("datasets/apple2orange.zip");
    let bytes = std::fs::read(&apple).unwrap();
    std::fs::write(&apple, &bytes[..bytes.len() / 2]).unwrap();
    let server = HttpServer::serve(&common::python(), &www);
    let train = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cyclegan-train"))
            .current_dir(d)
            .env("CYCLEGAN_MIRROR", &server.url)
            .env("CYCLEGAN_CACHE_DIR", d.join("cache"))
            .args(args)
            .output()
            .unwrap()
    };

    let out = train(&["datasets", "get", "horse2zebra"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("trainA 3, trainB 2, testA 2, testB 1 (horse -> zebra)"), "{}", text(&out));
    assert!(text(&out).contains("--dataroot datasets/horse2zebra --domain-a horse --domain-b zebra"), "{}", text(&out));
    for (split, n) in [("trainA", 3), ("testB", 1)] {
        assert_eq!(std::fs::read_dir(d.join("datasets/horse2zebra").join(split)).unwrap().count(), n);
    }
    let cached = || std::fs::read_dir(d.join("cache/datasets")).map(|r| r.count()).unwrap_or(0);
    assert_eq!(cached(), 0, "the archive is removed once unpacked");
    let out = train(&["datasets", "get", "horse2zebra"]);
    assert!(out.status.success() && text(&out).contains("already there"), "{}", text(&out));
    let out = train(&["datasets", "list"]);
    assert!(text(&out).lines().any(|l| l.starts_with("horse2zebra") && l.contains("yes")), "{}", text(&out));

    let out = train(&["datasets", "get", "apple2orange"]);
    assert!(!out.status.success() && text(&out).contains("truncated download"), "{}", text(&out));
    assert!(!d.join("datasets/apple2orange").exists() && cached() == 0, "{}", text(&out));
    let out = train(&["datasets", "get", "cityscapes"]);
    assert!(!out.status.success() && text(&out).contains("cityscapes-dataset.com"), "{}", text(&out));
    let out = train(&["datasets", "get", "maps"]);
    assert!(!out.status.success() && text(&out).contains("404"), "{}", text(&out));
    let names: Vec<_> = std::fs::read_dir(d.join("datasets")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["horse2zebra"]);
}
