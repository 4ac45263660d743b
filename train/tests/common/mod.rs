//! Helpers shared by the integration tests.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::Command;

/// Python with PyTorch: `CYCLEGAN_PYTHON`, else the workspace's `.venv` (scripts/install.sh).
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("CYCLEGAN_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = workspace().join(".venv/bin/python");
    assert!(venv.exists(), "no Python with PyTorch: run scripts/install.sh or set CYCLEGAN_PYTHON");
    venv
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

pub fn reference_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python/cyclegan_reference.py")
}

/// Runs the reference script; returns what it printed.
pub fn run_python(args: &[&str]) -> String {
    let out = Command::new(python()).arg(reference_script()).args(args).output().expect("python runs");
    assert!(out.status.success(), "reference script failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cyclegan-train"))
}

/// Runs the binary; returns (success, stdout + stderr).
pub fn run_bin(args: &[&str]) -> (bool, String) {
    let out = bin().args(args).output().expect("binary runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// A small synthetic dataset.
pub fn synth(dir: &Path, train: usize, size: u32) -> PathBuf {
    let out = dir.join("synth");
    let opts = cyclegan_train::synth::SynthOptions { train, test: 6, size, seed: 3 };
    cyclegan_train::synth::generate(&out, &opts, |_, _| {}).unwrap();
    out
}

/// Runs `model` with `onnx.checker` (full check) and ONNX Runtime on named inputs; returns its
/// outputs by the same names.
pub fn onnx_runtime(
    model: &Path,
    inputs: &[(String, tch::Tensor)],
    dir: &Path,
) -> std::collections::HashMap<String, tch::Tensor> {
    let (inp, out) = (dir.join("in.safetensors"), dir.join("out.safetensors"));
    tch::Tensor::write_safetensors(inputs, &inp).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/onnx_check.py");
    let res = Command::new(python()).args([&script, model, &inp, &out]).output().unwrap();
    assert!(
        res.status.success(),
        "onnx.checker / ONNX Runtime failed on {}:\n{}",
        model.display(),
        String::from_utf8_lossy(&res.stderr)
    );
    tch::Tensor::read_safetensors(&out).unwrap().into_iter().collect()
}

/// Two runs' logged losses agree step by step (a resumed run against the uninterrupted one):
/// the same learning rates, the losses within 1e-5 relative.
pub fn assert_same_losses(a: &[cyclegan_train::report::LossRow], b: &[cyclegan_train::report::LossRow]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.lr, y.lr);
        for (u, v) in x.losses.iter().zip(&y.losses) {
            assert!(
                (u - v).abs() <= 1e-5 * u.abs().max(1.0),
                "iteration {}: {:?} vs {:?}",
                x.iteration,
                x.losses,
                y.losses
            );
        }
    }
}

#[path = "../../../tests/support/http_server.rs"]
pub mod http_server;
