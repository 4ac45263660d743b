//! Checkpoints: one folder per save holding the four networks, both optimizers and both image
//! pools as safetensors, plus `state.json`. A folder is written under a temporary name and
//! renamed into place, and `latest` is a symlink swapped by rename, so a crash at any moment
//! leaves either the old or the new checkpoint, never a half-written one.
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::config::TrainConfig;
use crate::error::{Error, Result};

pub const STATE_FILE: &str = "state.json";
pub const LATEST: &str = "latest";
const FORMAT_VERSION: u32 = 1;

/// Where training stands, enough to continue exactly.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainState {
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
    pub config: TrainConfig,
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

impl TrainState {
    pub fn new(config: &TrainConfig) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").into(),
            next_epoch: 1,
            next_batch: 0,
            iteration: 0,
            lr: config.train.lr,
            seed: config.train.seed,
            loss_scale: 1.0,
            config: config.clone(),
            world_size: 1,
            imported_from: None,
        }
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

pub fn read_state(dir: &Path) -> Result<TrainState> {
    let file = dir.join(STATE_FILE);
    let text = fs::read_to_string(&file).map_err(|e| Error::checkpoint(&file, e.to_string()))?;
    let state: TrainState = serde_json::from_str(&text)
        .map_err(|e| Error::checkpoint(&file, format!("corrupt or from another tool: {e}")))?;
    if state.format_version != FORMAT_VERSION {
        return Err(Error::checkpoint(&file, format!("format version {} is not supported", state.format_version)));
    }
    Ok(state)
}

pub fn net_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.safetensors"))
}

fn write_tensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    let cpu: Vec<(&str, Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t.to_device(tch::Device::Cpu))).collect();
    Tensor::write_safetensors(&cpu, path).map_err(|e| Error::checkpoint(path, e.to_string()))?;
    sync_file(path)
}

fn sync_file(path: &Path) -> Result<()> {
    fs::File::open(path).and_then(|f| f.sync_all()).map_err(|e| Error::io(format!("cannot sync {}", path.display()), e))
}

pub fn read_tensors(path: &Path) -> Result<Vec<(String, Tensor)>> {
    if !path.is_file() {
        return Err(Error::checkpoint(path, "missing; the checkpoint is incomplete"));
    }
    Tensor::read_safetensors(path).map_err(|e| Error::checkpoint(path, format!("unreadable: {e}")))
}

/// Writes the files of a checkpoint into a temporary folder beside `dest`, then renames it to
/// `dest` (replacing an older one).
pub fn write_atomically(dest: &Path, state: &TrainState, files: &[(String, Vec<(String, Tensor)>)]) -> Result<PathBuf> {
    let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = dest.file_name().ok_or_else(|| Error::checkpoint(dest, "is not a folder path"))?;
    fs::create_dir_all(parent)
        .map_err(|e| Error::io(format!("output folder {} is not writable", parent.display()), e))?;
    let tmp = parent.join(format!(".tmp-{}-{}", name.to_string_lossy(), std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).map_err(|e| Error::io(format!("cannot create {}", tmp.display()), e))?;
    for (file, tensors) in files {
        write_tensors(&tmp.join(file), tensors)?;
    }
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

/// Writes a generator-only checkpoint (`network` is `G_A` or `G_B`): enough to translate and
/// export, not to resume training.
pub fn save_generator(
    dest: &Path,
    network: &str,
    tensors: Vec<(String, Tensor)>,
    state: &TrainState,
) -> Result<PathBuf> {
    write_atomically(dest, state, &[(format!("{network}.safetensors"), tensors)])
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
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

/// A network's variables as `prefix` + name, sorted by name: the order checkpoints and optimizer
/// states are written in.
pub fn variables(vs: &tch::nn::VarStore, prefix: &str) -> Vec<(String, Tensor)> {
    let mut vars: Vec<(String, Tensor)> =
        vs.variables().into_iter().map(|(name, t)| (format!("{prefix}{name}"), t)).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// Copies saved tensors into a network's variables; names and shapes must match exactly.
pub fn load_network(vs: &tch::nn::VarStore, file: &Path) -> Result<()> {
    let saved = read_tensors(file)?;
    let vars = vs.variables();
    let mut problems = Vec::new();
    for (name, var) in &vars {
        match saved.iter().find(|(n, _)| n == name) {
            None => problems.push(format!("missing {name}")),
            Some((_, t)) if t.size() != var.size() => {
                problems.push(format!("{name}: saved {:?}, model needs {:?}", t.size(), var.size()))
            }
            Some(_) => {}
        }
    }
    for (name, _) in &saved {
        if !vars.contains_key(name) {
            problems.push(format!("unexpected {name}"));
        }
    }
    if !problems.is_empty() {
        problems.truncate(8);
        return Err(Error::checkpoint(
            file,
            format!("does not fit the configured network ({}); check ngf/ndf/n_blocks", problems.join("; ")),
        ));
    }
    tch::no_grad(|| {
        for (name, mut var) in vars {
            let (_, t) = saved.iter().find(|(n, _)| *n == name).expect("checked above");
            var.copy_(t);
        }
    });
    Ok(())
}
