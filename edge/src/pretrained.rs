//! `pretrained:NAME` for a model: a generator the reference CycleGAN project publishes
//! (`cyclegan_hub::catalog`), downloaded once into the cache, read without PyTorch and written as
//! FP32 and FP16 ONNX with full metadata beside it. `cyclegan-edge models get` and `run` fetch;
//! the element and the library only read the cache.
use std::path::{Path, PathBuf};

use cyclegan_hub::catalog::{self, Pretrained};
use cyclegan_hub::download::{Download, download, sha256_file};
use cyclegan_model::export::{About, ExportOptions, SavedGenerator};
use cyclegan_onnx::{FloatType, Precision};

use crate::model::Model;
use crate::{Error, Result};

/// How a model names a published generator: `pretrained:summer2winter_yosemite`.
pub const SCHEME: &str = "pretrained:";

/// The NAME of a `pretrained:NAME` model.
pub fn name_in(model: &Path) -> Option<&str> {
    model.to_str().and_then(|s| s.strip_prefix(SCHEME)).map(str::trim)
}

/// Where and how to fetch.
#[derive(Debug, Clone, Default)]
pub struct Fetch {
    /// Another address for the `.pth` (a mirror); default: the catalogue's.
    pub url: Option<String>,
    /// The SHA-256 the `.pth` must have.
    pub sha256: Option<String>,
    /// The cache's root (`--cache-dir`); default: `cyclegan_hub::cache::root`.
    pub cache_dir: Option<PathBuf>,
    /// A progress bar and notes on stderr.
    pub progress: bool,
}

/// The ONNX models of a generator, written.
#[derive(Debug, Clone)]
pub struct Got {
    pub fp32: PathBuf,
    pub fp16: PathBuf,
    pub pth_sha256: String,
    pub summary: String,
}

/// `DIR/NAME.pth`, `DIR/NAME.fp32.onnx`, `DIR/NAME.fp16.onnx`.
fn file(dir: &Path, name: &str, suffix: &str) -> PathBuf {
    dir.join(format!("{name}.{suffix}"))
}

/// The FP32 ONNX of `pretrained:NAME` in the cache (the runtime converts it for TensorRT).
pub fn cached_onnx(entry: &Pretrained, cache_dir: Option<&Path>) -> PathBuf {
    file(&cyclegan_hub::cache::pretrained(cache_dir), entry.name, "fp32.onnx")
}

/// Downloads NAME's `.pth` unless the cache has it (checked against `fetch.sha256` when given),
/// then writes its FP32 and FP16 ONNX into `out` (default: beside it in the cache). A cached
/// file that turns out not to be a generator is removed, so the next try downloads it again.
pub fn get(name: &str, fetch: &Fetch, out: Option<&Path>) -> Result<Got> {
    let entry = catalog::pretrained_named(name)?;
    let dir = cyclegan_hub::cache::pretrained(fetch.cache_dir.as_deref());
    let pth = file(&dir, entry.name, "pth");
    let url = fetch.url.clone().unwrap_or_else(|| entry.url());
    if pth.exists()
        && let Some(pinned) = &fetch.sha256
        && sha256_file(&pth)? != cyclegan_hub::download::parse_sha256(pinned)?
    {
        let _ = std::fs::remove_file(&pth);
    }
    if !pth.exists() {
        download(&Download { sha256: fetch.sha256.as_deref(), progress: fetch.progress, ..Download::new(&url, &pth) })?;
    }
    let generator = SavedGenerator::read(&pth, None).map_err(|e| {
        let _ = std::fs::remove_file(&pth);
        Error::Invalid(format!(
            "{url} is not a CycleGAN generator ({}); the download was removed",
            crate::error::chain(&e)
        ))
    })?;
    let out = out.map_or(dir, Path::to_path_buf);
    std::fs::create_dir_all(&out)
        .map_err(|e| Error::Invalid(format!("{}: cannot create this folder: {e}", out.display())))?;
    let about = About { domains: entry.domains(), training_resolution: catalog::TRAINING_RESOLUTION, url: Some(&url) };
    // The FP32 file last: its presence tells `resolve` that both are there.
    let mut written = Vec::new();
    for precision in [Precision::Fp16, Precision::Fp32] {
        let opts = ExportOptions { direction: entry.direction, precision, io_type: FloatType::F32 };
        let model = generator.export(&opts, &about).map_err(|e| Error::Invalid(crate::error::chain(&e)))?;
        let path = file(&out, entry.name, &format!("{precision}.onnx"));
        cyclegan_onnx::write_model(&path, &model).map_err(|e| Error::Invalid(crate::error::chain(&e)))?;
        written.push(path);
    }
    let (from, to) = entry.domains();
    Ok(Got {
        fp16: written.remove(0),
        fp32: written.remove(0),
        pth_sha256: generator.sha256().to_string(),
        summary: format!("{from} -> {to} ({}), {}", entry.direction.name(), generator.report.describe()),
    })
}

/// `model` itself, or for `pretrained:NAME` its FP32 ONNX in the cache: fetched first when
/// `fetch` is given, else an error saying how to fetch it.
pub fn resolve(model: &Path, fetch: Option<&Fetch>) -> Result<PathBuf> {
    let Some(name) = name_in(model) else { return Ok(model.to_path_buf()) };
    let entry = catalog::pretrained_named(name)?;
    let cache_dir = fetch.and_then(|f| f.cache_dir.as_deref());
    let onnx = cached_onnx(entry, cache_dir);
    if onnx.exists() {
        return Ok(onnx);
    }
    match fetch {
        Some(fetch) => Ok(get(name, fetch, None)?.fp32),
        None => Err(Error::Invalid(format!(
            "{SCHEME}{name} is not in the cache ({}): fetch it once with `cyclegan-edge models get {name}`",
            onnx.display()
        ))),
    }
}

/// The generator a model setting names (a file, `pretrained:NAME` from the cache, or none: the
/// bundled one), loaded.
pub fn load(model: Option<&Path>) -> Result<Model> {
    let path = model.map(|m| resolve(m, None)).transpose()?;
    Ok(Model::load(path.as_deref())?)
}
