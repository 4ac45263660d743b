//! The checkpoint format: one folder per save holding networks (and whatever else a job keeps)
//! as safetensors files, plus `state.json`. A folder is written under a temporary name and
//! renamed into place, and `latest` is a symlink swapped by rename, so a crash at any moment
//! leaves either the old or the new checkpoint, never a half-written one.
//!
//! `state.json` carries the training recipe of the run. Its type is a parameter: training reads
//! the whole recipe, while this crate reads only the keys a generator needs ([`Recipe`]).
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use crate::config::{GeneratorConfig, ModelConfig};
use crate::direction::Direction;
use crate::error::{Error, Result};
use crate::tensor::NamedTensor;

pub const STATE_FILE: &str = "state.json";
pub const LATEST: &str = "latest";
/// The learned activation scales of a checkpoint of quantization-aware fine-tuning, one scalar
/// per INT8 layer (by ONNX node name).
pub const SCALES_FILE: &str = "qat_scales.safetensors";
const FORMAT_VERSION: u32 = 1;

/// Where training stands, enough to continue exactly, and the recipe `C` it runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct State<C = Recipe> {
    pub format_version: u32,
    pub tool_version: String,
    /// The epoch (from 1) and batch (from 0) the next step runs.
    pub next_epoch: usize,
    pub next_batch: usize,
    /// Steps done so far.
    pub iteration: u64,
    pub lr: f64,
    pub seed: u64,
    pub loss_scale: f64,
    pub config: C,
    /// How many data-parallel ranks made `next_batch` (each took batches of their own).
    #[serde(default = "one_rank")]
    pub world_size: usize,
    /// The PyTorch file a generator-only checkpoint was imported from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_from: Option<String>,
}

fn one_rank() -> usize {
    1
}

impl<C> State<C> {
    /// The state before the first step of a run of `config` at learning rate `lr`.
    pub fn new(config: C, lr: f64, seed: u64) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").into(),
            next_epoch: 1,
            next_batch: 0,
            iteration: 0,
            lr,
            seed,
            loss_scale: 1.0,
            config,
            world_size: 1,
            imported_from: None,
        }
    }
}

/// The keys of a run's recipe that describe its generators: `[model]`, and from `[data]` the
/// domain names and the training resolution. Other sections are ignored when reading.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    #[serde(default)]
    pub model: ModelConfig,
    #[serde(default)]
    pub data: Domains,
}

impl Recipe {
    /// The generators' family and size.
    pub fn generator(&self) -> GeneratorConfig {
        self.model.generator()
    }

    /// The names of the domains `direction` translates from and to.
    pub fn domains(&self, direction: Direction) -> (&str, &str) {
        direction.order(&self.data.domain_a, &self.data.domain_b)
    }
}

/// What the `[data]` section says about the generators (training's keys of the same names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Domains {
    /// Name of domain A (recorded in exported models).
    pub domain_a: String,
    /// Name of domain B.
    pub domain_b: String,
    /// The side of the square crops trained on.
    pub crop_size: u32,
}

impl Default for Domains {
    fn default() -> Self {
        Self { domain_a: "A".into(), domain_b: "B".into(), crop_size: 256 }
    }
}

/// `path` itself when it holds `state.json`, else `path/latest`.
pub fn resolve(path: &Path) -> Result<PathBuf> {
    if path.join(STATE_FILE).is_file() {
        return Ok(path.to_path_buf());
    }
    let latest = path.join(LATEST);
    if latest.join(STATE_FILE).is_file() {
        return Ok(latest);
    }
    let message = if path.exists() {
        "no state.json here or in latest/: not a checkpoint or run folder (pass the run folder, e.g. checkpoints/NAME)"
    } else {
        "does not exist"
    };
    Err(Error::checkpoint(path, message))
}

/// A checkpoint folder's `state.json`, with the recipe read as `C`.
pub fn read_state<C: serde::de::DeserializeOwned>(dir: &Path) -> Result<State<C>> {
    let file = dir.join(STATE_FILE);
    let text = fs::read_to_string(&file).map_err(|e| Error::checkpoint(&file, e.to_string()))?;
    let state: State<C> = serde_json::from_str(&text)
        .map_err(|e| Error::checkpoint(&file, format!("corrupt or from another tool: {e}")))?;
    if state.format_version != FORMAT_VERSION {
        return Err(Error::checkpoint(&file, format!("format version {} is not supported", state.format_version)));
    }
    Ok(state)
}

/// The file of network `name` (`G_A`, `D_B`, ...) in a checkpoint folder.
pub fn net_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.safetensors"))
}

/// The tensors of a safetensors file as f32 (networks and scales are stored in f32).
pub fn read_tensors(path: &Path) -> Result<Vec<NamedTensor>> {
    if !path.is_file() {
        return Err(Error::checkpoint(path, "missing; the checkpoint is incomplete"));
    }
    let bytes = fs::read(path).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    let file = SafeTensors::deserialize(&bytes).map_err(|e| Error::checkpoint(path, format!("unreadable: {e}")))?;
    let mut tensors: Vec<NamedTensor> = Vec::with_capacity(file.len());
    for (name, view) in file.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(Error::checkpoint(path, format!("`{name}` is {:?}, not f32", view.dtype())));
        }
        let data = view.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect();
        tensors.push(NamedTensor { name, shape: view.shape().iter().map(|&d| d as i64).collect(), data });
    }
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(tensors)
}

/// Writes f32 tensors as a safetensors file and syncs it to disk.
pub fn write_tensors(path: &Path, tensors: &[NamedTensor]) -> Result<()> {
    let bytes: Vec<Vec<u8>> = tensors.iter().map(|t| t.data.iter().flat_map(|v| v.to_le_bytes()).collect()).collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| {
            let shape = t.shape.iter().map(|&d| d as usize).collect();
            let view = safetensors::tensor::TensorView::new(Dtype::F32, shape, b)
                .map_err(|e| Error::checkpoint(path, format!("`{}`: {e}", t.name)))?;
            Ok((t.name.as_str(), view))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize_to_file(views, None, path).map_err(|e| Error::checkpoint(path, e.to_string()))?;
    sync_file(path)
}

/// Flushes a written file to disk, so that the rename that publishes it cannot overtake it.
pub fn sync_file(path: &Path) -> Result<()> {
    fs::File::open(path).and_then(|f| f.sync_all()).map_err(|e| Error::io(format!("cannot sync {}", path.display()), e))
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes a checkpoint folder `dest` atomically: `write_files` fills a temporary folder beside it
/// (each file synced, e.g. by [`write_tensors`]), `state.json` is added, and the folder is
/// renamed to `dest` (replacing an older one). `E` is the caller's error, which can hold ours.
pub fn write_atomically<C: Serialize, E: From<Error>>(
    dest: &Path,
    state: &State<C>,
    write_files: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<PathBuf, E> {
    let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = dest.file_name().ok_or_else(|| Error::checkpoint(dest, "is not a folder path"))?;
    fs::create_dir_all(parent)
        .map_err(|e| Error::io(format!("output folder {} is not writable", parent.display()), e))?;
    let tmp = parent.join(format!(".tmp-{}-{}", name.to_string_lossy(), std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).map_err(|e| Error::io(format!("cannot create {}", tmp.display()), e))?;
    write_files(&tmp)?;
    let json = serde_json::to_string_pretty(state).expect("state serialises");
    let state_path = tmp.join(STATE_FILE);
    fs::write(&state_path, json).map_err(|e| Error::io(format!("cannot write {}", state_path.display()), e))?;
    sync_file(&state_path)?;
    if dest.exists() {
        fs::remove_dir_all(dest).map_err(|e| Error::io(format!("cannot replace {}", dest.display()), e))?;
    }
    fs::rename(&tmp, dest).map_err(|e| Error::io(format!("cannot move checkpoint to {}", dest.display()), e))?;
    sync_dir(parent);
    Ok(dest.to_path_buf())
}

/// Writes a generator-only checkpoint (the generator of `direction`): enough to translate and
/// export, not to resume training.
pub fn save_generator<C: Serialize>(
    dest: &Path,
    direction: Direction,
    tensors: &[NamedTensor],
    state: &State<C>,
) -> Result<PathBuf> {
    write_atomically(dest, state, |dir| write_tensors(&net_file(dir, direction.network()), tensors))
}

/// Points `run_dir/latest` at `target` (a folder name in `run_dir`) atomically.
pub fn point_latest(run_dir: &Path, target: &str) -> Result<()> {
    let link = run_dir.join(LATEST);
    let tmp = run_dir.join(format!(".tmp-latest-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)
        .and_then(|_| fs::rename(&tmp, &link))
        .map_err(|e| Error::io(format!("cannot update {}", link.display()), e))?;
    sync_dir(run_dir);
    Ok(())
}

/// Removes rolling `iter_*` checkpoints other than `current` and the temporary folders of
/// writes that were killed. A kill between writing a checkpoint and moving `latest` (or between
/// moving it and removing the old one) leaves such folders; sweeping them all at each save keeps
/// a run that is killed again and again from filling the disk.
pub fn prune_rolling(run_dir: &Path, current: &str) {
    let Ok(entries) = fs::read_dir(run_dir) else { return };
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let stale_rolling = name.starts_with("iter_") && name != current;
        if (stale_rolling || name.starts_with(".tmp-")) && entry.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Whether `dir` is a checkpoint of quantization-aware fine-tuning.
pub fn is_qat_checkpoint(dir: &Path) -> bool {
    dir.join(SCALES_FILE).is_file()
}

/// A QAT checkpoint's learned activation scales, by layer.
pub fn read_scales(dir: &Path) -> Result<BTreeMap<String, f32>> {
    let file = dir.join(SCALES_FILE);
    read_tensors(&file)?
        .into_iter()
        .map(|t| match t.data[..] {
            [s] => Ok((t.name, s)),
            _ => Err(Error::checkpoint(&file, format!("`{}` holds {} values, not one scale", t.name, t.data.len()))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_and_state_round_trip_through_an_atomic_write() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("run/iter_1");
        let weights = vec![
            NamedTensor { name: "model.1.bias".into(), shape: vec![2], data: vec![0.5, -1.0] },
            NamedTensor { name: "model.1.weight".into(), shape: vec![2, 1, 1, 1], data: vec![1.0, 2.0] },
        ];
        let mut recipe = Recipe::default();
        recipe.data.domain_a = "summer".into();
        let state = State::new(recipe, 2e-4, 7);
        save_generator(&dest, Direction::B2a, &weights, &state).unwrap();
        point_latest(&tmp.path().join("run"), "iter_1").unwrap();

        let dir = resolve(&tmp.path().join("run")).unwrap();
        assert!(dir.ends_with("latest"));
        assert_eq!(read_state::<Recipe>(&dir).unwrap(), state);
        assert_eq!(read_tensors(&net_file(&dir, "G_B")).unwrap(), weights);
        assert!(!is_qat_checkpoint(&dir));
        let leftovers: Vec<_> = fs::read_dir(tmp.path().join("run")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers.len(), 2, "{leftovers:?}");
    }

    #[test]
    fn the_recipe_view_ignores_training_sections_and_names_what_is_wrong() {
        let tmp = tempfile::tempdir().unwrap();
        let json = r#"{"format_version":1,"tool_version":"0.1.0","next_epoch":3,"next_batch":0,"iteration":9,
            "lr":0.0002,"seed":0,"loss_scale":1.0,"config":{"data":{"dataroot":"d","domain_b":"winter"},
            "model":{"generator":"mobile","ngf":16,"n_blocks":4},"train":{"lr":0.0002},"output":{}}}"#;
        fs::write(tmp.path().join(STATE_FILE), json).unwrap();
        let state = read_state::<Recipe>(tmp.path()).unwrap();
        assert_eq!(state.config.domains(Direction::B2a), ("winter", "A"));
        let g = state.config.generator();
        assert_eq!((g.family, g.ngf, g.n_blocks, g.affine_norm), (crate::Family::Mobile, 16, 4, false));

        fs::write(tmp.path().join(STATE_FILE), json.replace("\"format_version\":1", "\"format_version\":9")).unwrap();
        let err = read_state::<Recipe>(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("format version 9"), "{err}");
        let err = read_tensors(&tmp.path().join("G_A.safetensors")).unwrap_err().to_string();
        assert!(err.contains("G_A.safetensors") && err.contains("missing"), "{err}");
    }
}
