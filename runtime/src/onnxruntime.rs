//! Finding and loading the ONNX Runtime shared library at run time, so that nothing links
//! against it (the same binary runs where it is missing and says so).
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::{Error, Result};

/// Where libonnxruntime is looked for, in order: `ORT_DYLIB_PATH`, the project's `.venv` (what
/// `scripts/install.sh` makes, relative to the working directory and to the executable),
/// then the system library folders.
pub fn onnxruntime_candidates() -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        found.push(PathBuf::from(p));
    }
    for site_packages in venv_site_packages() {
        found.extend(versioned_libraries(&site_packages.join("onnxruntime/capi")));
    }
    for dir in ["/usr/local/lib", "/usr/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu"] {
        found.extend(versioned_libraries(Path::new(dir)));
    }
    found
}

/// The `site-packages` folders of the project's `.venv` (what `scripts/install.sh` makes), where
/// the libraries loaded at run time come from pip wheels (ONNX Runtime, TensorRT, NVRTC): looked
/// for under the working directory and its two parents (tests run in a crate's folder) and the
/// executable's ancestors (target/{debug,release}[/deps] -> the checkout), each folder once.
pub fn venv_site_packages() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().take(3).map(Path::to_path_buf));
    }
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).take(4).map(Path::to_path_buf));
    }
    let mut found: Vec<PathBuf> = Vec::new();
    for root in roots {
        let Ok(pythons) = std::fs::read_dir(root.join(".venv/lib")) else { continue };
        let mut pythons: Vec<PathBuf> = pythons.flatten().map(|e| e.path().join("site-packages")).collect();
        pythons.sort();
        for dir in pythons {
            let dir = dir.canonicalize().unwrap_or(dir);
            if !found.contains(&dir) {
                found.push(dir);
            }
        }
    }
    found
}

/// `libonnxruntime.so.X.Y.Z` files in `dir`, newest name first, then a plain `libonnxruntime.so`.
fn versioned_libraries(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut libs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("libonnxruntime.so")))
        .collect();
    libs.sort();
    libs.reverse();
    libs
}

/// The library to load: `explicit`, else the first candidate that exists.
pub fn find_onnxruntime(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(Error::RuntimeLoad { path: path.to_path_buf(), reason: "no such file".into() })
        };
    }
    let candidates = onnxruntime_candidates();
    candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| Error::RuntimeMissing {
        looked: if candidates.is_empty() {
            "ORT_DYLIB_PATH, .venv/lib/python3*/site-packages/onnxruntime/capi, /usr/lib, /usr/local/lib".into()
        } else {
            candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        },
    })
}

static ENVIRONMENT: OnceLock<std::result::Result<(PathBuf, ort::environment::Environment), String>> = OnceLock::new();

/// Loads ONNX Runtime once per process; later calls get the same library whatever they ask.
pub(crate) fn environment(explicit: Option<&Path>) -> Result<(PathBuf, ort::environment::Environment)> {
    let loaded = ENVIRONMENT.get_or_init(|| {
        let path = find_onnxruntime(explicit).map_err(|e| e.to_string())?;
        let builder = ort::init_from(&path).map_err(|e| format!("ONNX Runtime library {}: {e}", path.display()))?;
        let env = builder
            .with_name("cyclegan-edge")
            .build()
            .map_err(|e| format!("ONNX Runtime library {}: {e}", path.display()))?;
        Ok((path, env))
    });
    loaded.clone().map_err(|reason| Error::BackendUnavailable("cpu".into(), reason))
}
