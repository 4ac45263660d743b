//! The project's `.venv` (what `scripts/install.sh` makes): where the libraries loaded at run time
//! come from pip wheels (ONNX Runtime, TensorRT, NVRTC), the Python of the benchmarks' peers and
//! FID's Inception-v3. One rule finds it for every tool: under the working directory and its two
//! parents (tests run in a crate's folder), then the executable's ancestors
//! (target/{debug,release}[/deps] -> the checkout), each folder once.
use std::path::{Path, PathBuf};

/// The `.venv` folders found, nearest first.
pub fn venvs() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().take(3).map(Path::to_path_buf));
    }
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).take(4).map(Path::to_path_buf));
    }
    let mut found: Vec<PathBuf> = Vec::new();
    for venv in roots.into_iter().map(|r| r.join(".venv")).filter(|v| v.is_dir()) {
        let venv = venv.canonicalize().unwrap_or(venv);
        if !found.contains(&venv) {
            found.push(venv);
        }
    }
    found
}

/// The `site-packages` folders of the `.venv`s found.
pub fn site_packages() -> Vec<PathBuf> {
    let mut found = Vec::new();
    for venv in venvs() {
        let Ok(pythons) = std::fs::read_dir(venv.join("lib")) else { continue };
        let mut pythons: Vec<PathBuf> = pythons.flatten().map(|e| e.path().join("site-packages")).collect();
        pythons.sort();
        found.extend(pythons);
    }
    found
}

/// `relative` (e.g. `bin/python`) in the first `.venv` that has it.
pub fn file(relative: &str) -> Option<PathBuf> {
    venvs().into_iter().map(|v| v.join(relative)).find(|p| p.exists())
}

/// The Python of the benchmarks' peers: the `.venv`'s, else `python3` from `PATH`.
pub fn python() -> PathBuf {
    file("bin/python").unwrap_or_else(|| PathBuf::from("python3"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checkouts_venv_is_found_from_a_crate_folder() {
        // Tests run in runtime/, and the suite needs the checkout's .venv (scripts/install.sh).
        let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join(".venv");
        let checkout = checkout.canonicalize().expect("run scripts/install.sh first");
        assert_eq!(venvs().first(), Some(&checkout));
        assert_eq!(python(), checkout.join("bin/python"));
        assert!(site_packages().iter().any(|p| p.join("onnxruntime").is_dir()));
        assert!(file("no/such/file").is_none());
    }
}
