//! Finding and loading the ONNX Runtime shared library at run time, so that nothing links
//! against it (the same binary runs where it is missing and says so).
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::{Error, Result};

/// Where the Debian package puts ONNX Runtime's library (edge/Cargo.toml's
/// `[package.metadata.deb]` assets): a folder of its own, so no other program loads it.
pub const PACKAGED_DIR: &str = "/usr/lib/cyclegan-edge";

/// A libonnxruntime that may be loaded, and why it is looked for there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub path: PathBuf,
    pub origin: &'static str,
}

/// Where libonnxruntime is looked for, in order: `ORT_DYLIB_PATH`, the project's `.venv` (what
/// `scripts/install.sh` makes, relative to the working directory and to the executable), the
/// Debian package's folder, `LD_LIBRARY_PATH`, then the system library folders.
pub fn onnxruntime_candidates() -> Vec<Candidate> {
    let mut found = Vec::new();
    let mut add = |paths: Vec<PathBuf>, origin: &'static str| {
        found.extend(paths.into_iter().map(|path| Candidate { path, origin }));
    };
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        add(vec![PathBuf::from(p)], "ORT_DYLIB_PATH");
    }
    for site_packages in crate::venv::site_packages() {
        add(versioned_libraries(&site_packages.join("onnxruntime/capi")), "the checkout's .venv");
    }
    add(versioned_libraries(Path::new(PACKAGED_DIR)), "the cyclegan-edge package");
    if let Some(dirs) = std::env::var_os("LD_LIBRARY_PATH") {
        for dir in std::env::split_paths(&dirs).filter(|d| !d.as_os_str().is_empty()) {
            add(versioned_libraries(&dir), "LD_LIBRARY_PATH");
        }
    }
    for dir in ["/usr/local/lib", "/usr/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu"] {
        add(versioned_libraries(Path::new(dir)), "the system's library folders");
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
    locate_onnxruntime(explicit).map(|c| c.path)
}

/// As `find_onnxruntime`, saying where the library was found.
pub fn locate_onnxruntime(explicit: Option<&Path>) -> Result<Candidate> {
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(Candidate { path: path.to_path_buf(), origin: "given" })
        } else {
            Err(Error::RuntimeLoad { path: path.to_path_buf(), reason: "no such file".into() })
        };
    }
    let candidates = onnxruntime_candidates();
    candidates.iter().find(|c| c.path.is_file()).cloned().ok_or_else(|| Error::RuntimeMissing {
        looked: if candidates.is_empty() {
            format!(
                "ORT_DYLIB_PATH, .venv/lib/python3*/site-packages/onnxruntime/capi, {PACKAGED_DIR}, \
                 LD_LIBRARY_PATH, /usr/lib, /usr/local/lib"
            )
        } else {
            candidates.iter().map(|c| c.path.display().to_string()).collect::<Vec<_>>().join(", ")
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
