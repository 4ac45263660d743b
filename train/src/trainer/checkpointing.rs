//! Saving and restoring the whole CycleGAN (networks, optimizers, image pools) in the checkpoint
//! format of `crate::checkpoint`.
use std::path::{Path, PathBuf};

use tch::Tensor;

use super::{CycleGan, NETWORKS};
use crate::checkpoint::{TrainState, load_network, net_file, read_state, read_tensors, variables, write_atomically};
use crate::error::Result;

fn pool_tensors(model: &CycleGan) -> Vec<(String, Tensor)> {
    let mut out = Vec::new();
    for (domain, pool) in [("A", &model.pool_a), ("B", &model.pool_b)] {
        for (i, t) in pool.images().iter().enumerate() {
            out.push((format!("{domain}.{i:03}"), t.shallow_clone()));
        }
    }
    out
}

impl CycleGan {
    /// Writes a checkpoint folder `run_dir/name` atomically.
    pub fn save_checkpoint(&self, run_dir: &Path, name: &str, state: &TrainState) -> Result<PathBuf> {
        let mut files: Vec<(String, Vec<(String, Tensor)>)> = NETWORKS
            .iter()
            .zip(&self.stores)
            .map(|(net, vs)| (format!("{net}.safetensors"), variables(vs, "")))
            .collect();
        files.push(("optim_G.safetensors".into(), self.opt_g.state()));
        files.push(("optim_D.safetensors".into(), self.opt_d.state()));
        files.push(("pools.safetensors".into(), pool_tensors(self)));
        write_atomically(&run_dir.join(name), state, &files)
    }

    /// Restores every network, optimizer and pool of a checkpoint folder.
    pub fn load_checkpoint(&mut self, dir: &Path) -> Result<TrainState> {
        let state = read_state(dir)?;
        for (name, vs) in NETWORKS.iter().zip(&self.stores) {
            load_network(vs, &net_file(dir, name))?;
        }
        let opt_g = dir.join("optim_G.safetensors");
        self.opt_g.load_state(&read_tensors(&opt_g)?, &opt_g)?;
        let opt_d = dir.join("optim_D.safetensors");
        self.opt_d.load_state(&read_tensors(&opt_d)?, &opt_d)?;
        let device = self.stores[0].device();
        let pools = read_tensors(&dir.join("pools.safetensors"))?;
        for (domain, pool) in [("A.", &mut self.pool_a), ("B.", &mut self.pool_b)] {
            let mut images: Vec<(String, Tensor)> = pools
                .iter()
                .filter(|(n, _)| n.starts_with(domain))
                .map(|(n, t)| (n.clone(), t.to_device(device)))
                .collect();
            images.sort_by(|a, b| a.0.cmp(&b.0));
            pool.restore(images.into_iter().map(|(_, t)| t).collect());
        }
        self.scaler.scale = state.loss_scale;
        Ok(state)
    }
}
