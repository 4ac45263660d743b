//! FID and KID (`cyclegan-train eval fid`) agree with fid-helper-pytorch's own computation
//! (and a numpy KID on its features) on the same images, a set is at distance ~0 from itself, and
//! bad inputs get one clear message each.
mod common;

use std::path::Path;

use cyclegan_train::eval::{Fakes, fid_kid};
use cyclegan_train::fid::{Inception, find_inception};
use tch::Device;

fn peer(real: &Path, fake: &Path) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/fid_peer.py");
    let out = std::process::Command::new(common::python()).arg(script).args([real, fake]).output().unwrap();
    assert!(out.status.success(), "fid_peer.py failed:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap()
}

#[test]
fn fid_and_kid_match_fid_helper_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    // 64x64 images: both sides resize them to 299x299 the same way.
    let data = common::synth(dir.path(), 1, 64);
    let (real, fake) = (data.join("testB"), data.join("testA"));
    let inception = Inception::load(&find_inception(None).unwrap(), Device::Cpu).unwrap();
    let ours = fid_kid(&inception, &real, Fakes::Folder(&fake), |_, _| {}).unwrap();
    let theirs = peer(&real, &fake);
    let (fid, kid) = (theirs["fid"].as_f64().unwrap(), theirs["kid"].as_f64().unwrap());
    assert_eq!((ours.real, ours.fake, ours.resized), (6, 6, 12));
    assert!((ours.fid - fid).abs() <= 1e-3 * fid, "FID ours {} vs fid-helper-pytorch {fid}", ours.fid);
    assert!((ours.kid - kid).abs() <= 1e-3 * kid.abs().max(1e-3), "KID ours {} vs numpy {kid}", ours.kid);

    let images: Vec<image::RgbImage> = cyclegan_train::data::list_images(&real, 0)
        .unwrap()
        .iter()
        .map(|p| cyclegan_train::data::load_rgb(p).unwrap())
        .collect();
    let features = cyclegan_train::fid::features_of(&inception, &images, |_| {}).unwrap();
    let same = cyclegan_train::fid::fid(&features, &features);
    assert!(same.abs() < 1e-3 * ours.fid, "FID of a set against itself: {same}");
}

#[test]
fn bad_fid_inputs_get_one_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::synth(dir.path(), 1, 32);
    let lonely = dir.path().join("one");
    std::fs::create_dir_all(&lonely).unwrap();
    std::fs::copy(data.join("testA/00000.png"), lonely.join("00000.png")).unwrap();
    let (real, fake) = (data.join("testB"), data.join("testA"));
    let s = |p: &Path| p.to_str().unwrap().to_string();

    let (ok, text) = common::run_bin(&["eval", "fid", "--real", &s(&lonely), "--fake", &s(&fake)]);
    assert!(!ok && text.contains("--real") && text.contains("at least 2"), "{text}");
    let (ok, text) = common::run_bin(&["eval", "fid", "--fake", &s(&fake)]);
    assert!(!ok && text.contains("--real"), "{text}");
    let (ok, text) = common::run_bin(&["eval", "fid", "--real", &s(&real)]);
    assert!(!ok && text.contains("--fake") && text.contains("--checkpoint"), "{text}");
    let missing = dir.path().join("inception.pt");
    let args = ["eval", "fid", "--real", &s(&real), "--fake", &s(&fake), "--inception", &s(&missing)];
    let (ok, text) = common::run_bin(&args);
    assert!(!ok && text.contains("--inception") && text.contains("inception.pt"), "{text}");
}
