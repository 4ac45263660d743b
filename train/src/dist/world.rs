//! Who this process is in a data-parallel run, from the environment torchrun (and `fit --nproc`)
//! sets, or SLURM's under `srun`.
use crate::error::{Error, Result};

/// This process's place among the ranks, and where they meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct World {
    pub rank: usize,
    pub size: usize,
    /// The rank among those of this machine, and how many run here.
    pub local_rank: usize,
    pub local_size: usize,
    /// Rank 0's address and the port of its rendezvous store (MASTER_ADDR, MASTER_PORT).
    pub addr: String,
    pub port: u16,
}

fn bad(message: impl Into<String>) -> Error {
    Error::Distributed(message.into())
}

impl World {
    /// From the process environment; `None` for a run of one process. (torchrun's single rank
    /// is a world of one: its collectives run, on NCCL for a GPU.)
    pub fn from_env() -> Result<Option<Self>> {
        Self::from_vars(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// As `from_env`, with `var` looking the variables up.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let number = |name: &str| -> Result<Option<usize>> {
            var(name)
                .map(|v| v.trim().parse::<usize>().map_err(|_| bad(format!("{name}={v} is not a whole number"))))
                .transpose()
        };
        let (rank, size, local_rank, local_size) = if var("RANK").is_some() || var("WORLD_SIZE").is_some() {
            let (Some(rank), Some(size)) = (number("RANK")?, number("WORLD_SIZE")?) else {
                let (set, unset) = if var("RANK").is_some() { ("RANK", "WORLD_SIZE") } else { ("WORLD_SIZE", "RANK") };
                return Err(bad(format!(
                    "{set} is set but {unset} is not: a data-parallel rank needs both (torchrun sets them); unset \
                     {set} to train in one process"
                )));
            };
            (rank, size, number("LOCAL_RANK")?.unwrap_or(rank), number("LOCAL_WORLD_SIZE")?.unwrap_or(size))
        } else if number("SLURM_NTASKS")?.is_some_and(|n| n > 1) {
            let size = number("SLURM_NTASKS")?.expect("checked");
            let rank = number("SLURM_PROCID")?.ok_or_else(|| bad("SLURM_NTASKS is set but SLURM_PROCID is not"))?;
            // SLURM_NTASKS_PER_NODE reads "2" or "2(x3)".
            let per_node = var("SLURM_NTASKS_PER_NODE")
                .and_then(|v| v.split('(').next().and_then(|n| n.parse().ok()))
                .unwrap_or(size);
            (rank, size, number("SLURM_LOCALID")?.unwrap_or(0), per_node)
        } else {
            return Ok(None);
        };
        if size == 0 || rank >= size {
            return Err(bad(format!("rank {rank} of a world of {size}: RANK must be below WORLD_SIZE")));
        }
        if local_size == 0 || local_rank >= local_size {
            return Err(bad(format!("LOCAL_RANK {local_rank} must be below LOCAL_WORLD_SIZE {local_size}")));
        }
        let addr = var("MASTER_ADDR").ok_or_else(|| {
            bad("MASTER_ADDR is not set: rank 0's address (torchrun sets it; under SLURM export it in the batch \
                 script, e.g. the first name of `scontrol show hostnames $SLURM_JOB_NODELIST`)")
        })?;
        let port =
            var("MASTER_PORT").ok_or_else(|| bad("MASTER_PORT is not set: a free TCP port on rank 0's machine"))?;
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad(format!("MASTER_PORT={port} is not a TCP port (1-65535)")))?;
        Ok(Some(Self { rank, size, local_rank, local_size, addr, port }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn world(vars: &[(&str, &str)]) -> Result<Option<World>> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        World::from_vars(|k| map.get(k).cloned())
    }

    const RENDEZVOUS: [(&str, &str); 2] = [("MASTER_ADDR", "10.0.0.1"), ("MASTER_PORT", "29500")];

    #[test]
    fn reads_torchrun_and_slurm() {
        assert_eq!(world(&[]).unwrap(), None);
        let alone = world(&[&[("RANK", "0"), ("WORLD_SIZE", "1")][..], &RENDEZVOUS].concat()).unwrap().unwrap();
        assert_eq!((alone.rank, alone.size, alone.local_size), (0, 1, 1));
        let torchrun = [("RANK", "3"), ("WORLD_SIZE", "4"), ("LOCAL_RANK", "1"), ("LOCAL_WORLD_SIZE", "2")];
        let w = world(&[&torchrun[..], &RENDEZVOUS].concat()).unwrap().unwrap();
        assert_eq!(w, World { rank: 3, size: 4, local_rank: 1, local_size: 2, addr: "10.0.0.1".into(), port: 29500 });
        let slurm =
            [("SLURM_PROCID", "5"), ("SLURM_NTASKS", "8"), ("SLURM_LOCALID", "1"), ("SLURM_NTASKS_PER_NODE", "4(x2)")];
        let w = world(&[&slurm[..], &RENDEZVOUS].concat()).unwrap().unwrap();
        assert_eq!((w.rank, w.size, w.local_rank, w.local_size), (5, 8, 1, 4));
        assert_eq!(world(&[("SLURM_PROCID", "0"), ("SLURM_NTASKS", "1")]).unwrap(), None);
    }

    #[test]
    fn incomplete_or_inconsistent_variables_are_named() {
        let message = |vars: &[(&str, &str)]| world(vars).unwrap_err().to_string();
        assert!(message(&[("WORLD_SIZE", "2")]).contains("WORLD_SIZE is set but RANK is not"));
        assert!(message(&[("RANK", "1")]).contains("RANK is set but WORLD_SIZE is not"));
        assert!(message(&[("RANK", "2"), ("WORLD_SIZE", "2")]).contains("below WORLD_SIZE"));
        assert!(message(&[("RANK", "x"), ("WORLD_SIZE", "2")]).contains("RANK=x"));
        assert!(message(&[("RANK", "1"), ("WORLD_SIZE", "2")]).contains("MASTER_ADDR is not set"));
        let no_port = [("RANK", "1"), ("WORLD_SIZE", "2"), ("MASTER_ADDR", "h"), ("MASTER_PORT", "70000")];
        assert!(message(&no_port).contains("MASTER_PORT=70000"));
        let local = [("RANK", "1"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "2"), ("LOCAL_WORLD_SIZE", "2")];
        assert!(message(&local).contains("LOCAL_RANK 2"));
    }
}
