//! Where fetched and derived files are kept between runs: pretrained generators, dataset
//! archives and TensorRT engines, each in its own folder under one root.
use std::path::{Path, PathBuf};

/// Overrides the root for every tool (a `--cache-dir` flag overrides it in turn).
pub const CACHE_ENV: &str = "CYCLEGAN_CACHE_DIR";

/// The root: `explicit` (a `--cache-dir`), else [`CACHE_ENV`], else
/// `$XDG_CACHE_HOME/cyclegan-edge`, else `~/.cache/cyclegan-edge`.
pub fn root(explicit: Option<&Path>) -> PathBuf {
    if let Some(dir) = explicit {
        return dir.to_path_buf();
    }
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var(CACHE_ENV) {
        return dir;
    }
    var("XDG_CACHE_HOME")
        .or_else(|| var("HOME").map(|h| h.join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("cyclegan-edge")
}

/// Downloaded `.pth` files and the ONNX models made from them.
pub fn pretrained(explicit: Option<&Path>) -> PathBuf {
    root(explicit).join("pretrained")
}

/// Downloaded dataset archives.
pub fn datasets(explicit: Option<&Path>) -> PathBuf {
    root(explicit).join("datasets")
}

/// Built TensorRT engines.
pub fn engines(explicit: Option<&Path>) -> PathBuf {
    root(explicit).join("engines")
}
