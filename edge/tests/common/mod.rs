//! Helpers shared by the edge tests.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Starts one of our own binaries: directly, or through `CYCLEGAN_TEST_RUNNER` when the tests
/// run emulated for another architecture (scripts/cross-test.sh: qemu, as there is no binfmt).
pub fn own_binary(path: &str) -> Command {
    match std::env::var("CYCLEGAN_TEST_RUNNER") {
        Ok(runner) if !runner.is_empty() => {
            let mut cmd = Command::new(runner);
            cmd.arg(path);
            cmd
        }
        _ => Command::new(path),
    }
}

/// The venv's Python (with onnx and onnxruntime), made by scripts/install.sh.
pub fn python() -> PathBuf {
    let venv = workspace().join(".venv/bin/python");
    assert!(venv.is_file(), "{} is missing: run ./scripts/install.sh", venv.display());
    venv
}

/// Runs edge/python/ort_peer.py with `args`; panics with its stderr on failure.
pub fn ort_peer(args: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/ort_peer.py");
    let out = Command::new(python()).arg(script).args(args).output().expect("python runs");
    assert!(out.status.success(), "ort_peer.py {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A landscape-like RGB picture: sky gradient, a jagged ridge, textured green below.
pub fn scene(w: usize, h: usize, seed: usize) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let ridge = h / 2 + ((x + seed) * 37 % 23) * h / 80;
            let px = if y < ridge {
                [(90 + y * 100 / h) as u8, (150 + y * 60 / h) as u8, 235]
            } else {
                [(40 + (x * 13 + y * 7 + seed) % 50) as u8, (120 + (x * 5 + y) % 70) as u8, 40]
            };
            rgb.extend_from_slice(&px);
        }
    }
    rgb
}

#[path = "../../../tests/support/http_server.rs"]
pub mod http_server;
