//! Checkpoints of training in the format of `cyclegan_model::checkpoint`, from and into tch:
//! the state with the whole recipe, networks' variables and other tensors (optimizer moments and
//! step counts, image pools) written with libtorch's safetensors writer.
use std::path::{Path, PathBuf};

use cyclegan_model::checkpoint::{self as format, State};
use tch::Tensor;

use crate::config::TrainConfig;
use crate::error::{Error, Result};

pub use format::{LATEST, STATE_FILE, net_file, point_latest, prune_rolling, resolve};

/// Where training stands and the recipe it runs.
pub type TrainState = State<TrainConfig>;

/// The state before a run's first step.
pub fn new_state(config: &TrainConfig) -> TrainState {
    State::new(config.clone(), config.train.lr, config.train.seed)
}

/// A checkpoint folder's state with its whole recipe.
pub fn read_state(dir: &Path) -> Result<TrainState> {
    Ok(format::read_state(dir)?)
}

fn write_tensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    let cpu: Vec<(&str, Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t.to_device(tch::Device::Cpu))).collect();
    Tensor::write_safetensors(&cpu, path).map_err(|e| Error::checkpoint(path, e.to_string()))?;
    Ok(format::sync_file(path)?)
}

/// The tensors of a safetensors file of any element type.
pub fn read_tensors(path: &Path) -> Result<Vec<(String, Tensor)>> {
    if !path.is_file() {
        return Err(Error::checkpoint(path, "missing; the checkpoint is incomplete"));
    }
    Tensor::read_safetensors(path).map_err(|e| Error::checkpoint(path, format!("unreadable: {e}")))
}

/// Writes a checkpoint folder `dest` atomically with `files` (file name, tensors) and `state`.
pub fn write_atomically(dest: &Path, state: &TrainState, files: &[(String, Vec<(String, Tensor)>)]) -> Result<PathBuf> {
    format::write_atomically(dest, state, |dir| {
        files.iter().try_for_each(|(file, tensors)| write_tensors(&dir.join(file), tensors))
    })
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
