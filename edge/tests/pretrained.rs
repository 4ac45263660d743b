//! `models get NAME` and `run --model pretrained:NAME` against a local HTTP server standing in
//! for the reference project's (through $CYCLEGAN_MIRROR): a generator saved as PyTorch 0.3 saved
//! the published ones is fetched once, becomes ONNX that computes PyTorch's output, runs, and keeps
//! running from the cache with the server gone; bad answers (a 404, an HTML page, a pickle that
//! would run code, another architecture, a wrong SHA-256) leave nothing in the cache.
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::http_server::HttpServer;
use cyclegan_edge::backend::{Backend, CpuBackend, CpuOptions};
use cyclegan_edge::model::Model;
use cyclegan_onnx::metadata::{SOURCE_URL_KEY, property};
use safetensors::SafeTensors;

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    cache: PathBuf,
    server: HttpServer,
}

impl Setup {
    fn edge(&self, args: &[&str]) -> Output {
        let mut cmd = common::own_binary(env!("CARGO_BIN_EXE_cyclegan-edge"));
        cmd.current_dir(&self.root)
            .env("CYCLEGAN_MIRROR", &self.server.url)
            .env("CYCLEGAN_CACHE_DIR", &self.cache)
            .args(args)
            .output()
            .unwrap()
    }

    fn pretrained(&self) -> PathBuf {
        self.cache.join("pretrained")
    }
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The server's folder holds `pretrained_models/summer2winter_yosemite.pth` (the reference
/// generator at ngf 8, saved as PyTorch 0.3 saved the published ones: legacy format, instance
/// norms with running statistics), and as other names a page that is not a generator,
/// a pickle that would run code and a state dict of another architecture; returns the input and
/// PyTorch's output on it.
fn setup() -> (Setup, Vec<f32>, Vec<f32>) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let served = root.join("www/pretrained_models");
    std::fs::create_dir_all(&served).unwrap();
    std::fs::write(served.join("zebra2horse.pth"), b"<html>Moved</html>").unwrap();
    let x: Vec<f32> = (0..3 * 32 * 32).map(|i| (i as f32 * 0.37).sin() * 0.9).collect();
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![1, 3, 32, 32], &bytes).unwrap();
    safetensors::serialize_to_file([("x", view)], None, &root.join("x.safetensors")).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let script = common::workspace().join("train/python/cyclegan_reference.py");
    let pth = served.join("summer2winter_yosemite.pth");
    let out = Command::new(common::python())
        .arg(script)
        .args(["save-pth", "--ngf", "8", "--pytorch03", "--out", &s(&pth), "--input", &s(&root.join("x.safetensors"))])
        .args(["--output", &s(&root.join("y.safetensors"))])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let y = std::fs::read(root.join("y.safetensors")).unwrap();
    let y = SafeTensors::deserialize(&y).unwrap().tensor("y").unwrap().data().to_vec();
    let y = y.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    // A pickle whose loading would run a command, and a state dict of another architecture.
    let marker = root.join("payload-ran");
    let hostile = root.join("hostile");
    let out = Command::new(common::python())
        .arg(common::workspace().join("train/python/cyclegan_reference.py"))
        .args(["save-hostile", "--out", &s(&hostile), "--marker", &s(&marker)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::rename(root.join("hostile.zip.pth"), served.join("orange2apple.pth")).unwrap();
    let conv = "import sys, torch; torch.save(torch.nn.Conv2d(3, 8, 3).state_dict(), sys.argv[1])";
    let out = Command::new(common::python()).args(["-c", conv]).arg(served.join("apple2orange.pth")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let server = HttpServer::serve(&common::python(), &root.join("www"));
    (Setup { cache: root.join("cache"), root, _dir: dir, server }, x, y)
}

#[test]
fn a_pretrained_generator_is_fetched_once_converted_and_runs_from_the_cache() {
    let (mut t, x, expected) = setup();
    let out = t.edge(&["models", "get", "summer2winter_yosemite"]);
    assert!(out.status.success(), "{}", text(&out));
    let printed = text(&out);
    assert!(printed.contains("summer -> winter (a2b), ResNet generator, ngf 8"), "{printed}");
    assert!(printed.contains("--model pretrained:summer2winter_yosemite"), "{printed}");

    let fp32 = t.pretrained().join("summer2winter_yosemite.fp32.onnx");
    let model = Model::load(Some(&fp32)).unwrap();
    let m = &model.metadata;
    assert_eq!((m.source_domain.as_str(), m.target_domain.as_str(), m.direction.as_str()), ("summer", "winter", "a2b"));
    let url = format!("{}/pretrained_models/summer2winter_yosemite.pth", t.server.url);
    let proto = cyclegan_onnx::read_model(&fp32).unwrap();
    assert_eq!(property(&proto, SOURCE_URL_KEY), Some(url.as_str()));
    let pth = t.pretrained().join("summer2winter_yosemite.pth");
    let sha = Command::new("sha256sum").arg(&pth).output().unwrap();
    let sha = String::from_utf8(sha.stdout).unwrap().split_whitespace().next().unwrap().to_string();
    assert_eq!(m.source_sha256, sha);
    assert!(printed.contains(&sha), "{printed}");
    let mut ours = Vec::new();
    CpuBackend::open(&model, &CpuOptions { threads: 2, ..Default::default() })
        .unwrap()
        .run(&x, [1, 3, 32, 32], &mut ours)
        .unwrap();
    let diff = ours.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(diff < 1e-4, "max difference to PyTorch {diff}");
    assert!(t.pretrained().join("summer2winter_yosemite.fp16.onnx").is_file());

    // `run` from the cache, the server gone.
    t.server.stop();
    let video = t.root.join("out.mp4");
    let args = ["run", "--model", "pretrained:summer2winter_yosemite", "--backend", "cpu", "--num-frames", "2"];
    let video = video.to_str().unwrap();
    let out =
        t.edge(&[&args[..], &["--width", "64", "--height", "48", "--stats", "false", "--output", video]].concat());
    assert!(out.status.success() && Path::new(video).is_file(), "{}", text(&out));
    assert!(text(&out).contains("summer -> winter"), "{}", text(&out));
}

#[test]
fn run_fetches_on_first_use_and_bad_answers_leave_nothing_in_the_cache() {
    let (t, _, _) = setup();
    let video = t.root.join("out.mp4");
    let out = t.edge(&[
        "run",
        "--model",
        "pretrained:summer2winter_yosemite",
        "--backend",
        "cpu",
        "--num-frames",
        "2",
        "--width",
        "64",
        "--height",
        "48",
        "--stats",
        "false",
        "--output",
        video.to_str().unwrap(),
    ]);
    assert!(out.status.success() && video.is_file(), "{}", text(&out));
    assert!(t.pretrained().join("summer2winter_yosemite.fp32.onnx").is_file());
    let cached = || {
        let mut names: Vec<String> = std::fs::read_dir(t.pretrained())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let before = cached();

    // Not on the server, not a generator, not the pinned SHA-256, not a name: one message each.
    let out = t.edge(&["models", "get", "horse2zebra"]);
    assert!(!out.status.success() && text(&out).contains("404") && text(&out).contains("--url"), "{}", text(&out));
    let out = t.edge(&["models", "get", "zebra2horse"]);
    assert!(!out.status.success() && text(&out).contains("is not a CycleGAN generator"), "{}", text(&out));
    let out = t.edge(&["models", "get", "orange2apple"]);
    assert!(!out.status.success() && text(&out).contains("is not a CycleGAN generator"), "{}", text(&out));
    assert!(!t.root.join("payload-ran").exists(), "the pickle's payload ran");
    let out = t.edge(&["models", "get", "apple2orange"]);
    assert!(!out.status.success() && text(&out).contains("a ResNet generator starts with"), "{}", text(&out));
    let out = t.edge(&["models", "get", "summer2winter_yosemite", "--sha256", &"0".repeat(64), "--out", "elsewhere"]);
    assert!(!out.status.success() && text(&out).contains("SHA-256"), "{}", text(&out));
    assert!(!t.root.join("elsewhere").exists());
    let out = t.edge(&["models", "get", "summer2autumn"]);
    assert!(!out.status.success() && text(&out).contains("style_vangogh"), "{}", text(&out));
    let out = t.edge(&["run", "--model", "pretrained:summer2autumn", "--backend", "cpu"]);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    // The pinned mismatch removed the cached .pth (it is not what was asked for); the rest stays.
    assert_eq!(cached(), before.into_iter().filter(|n| !n.ends_with(".pth")).collect::<Vec<_>>());

    // An unwritable cache is named.
    let blocked = t.root.join("a-file");
    std::fs::write(&blocked, b"").unwrap();
    let mut cmd = common::own_binary(env!("CARGO_BIN_EXE_cyclegan-edge"));
    let out = cmd
        .env("CYCLEGAN_MIRROR", &t.server.url)
        .args(["models", "get", "apple2orange", "--cache-dir"])
        .arg(&blocked)
        .output()
        .unwrap();
    assert!(!out.status.success() && text(&out).contains("a-file"), "{}", text(&out));

    let list = t.edge(&["models", "list"]);
    assert!(
        text(&list).lines().any(|l| l.starts_with("summer2winter_yosemite") && l.contains("yes")),
        "{}",
        text(&list)
    );
}
