//! What the training loop trains.
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use tch::Tensor;

use crate::checkpoint::TrainState;
use crate::config::TrainConfig;
use crate::error::Result;

/// One step's results.
pub struct Step {
    /// In the order of [`Job::loss_names`].
    pub losses: Vec<f64>,
    /// Rows of images for the sample grid.
    pub samples: Vec<Vec<Tensor>>,
    /// A few figures for the progress bar.
    pub progress: String,
}

/// Networks and optimizers the loop steps, saves and restores.
pub trait Job {
    /// The loss curves' title.
    const TITLE: &'static str;
    /// What the first line says the run does ("training", "distilling").
    const VERB: &'static str;
    /// Why the job cannot run data-parallel, if it cannot.
    const ONE_PROCESS: Option<&'static str>;

    /// The losses `step` returns: the CSV's columns and the curves' legend (the temporal
    /// term's only when it is on, so that a paper run's log is the reference's).
    fn loss_names(&self) -> Vec<&'static str>;
    fn set_lr(&mut self, lr: f64);
    /// One optimisation step on a batch of each domain; an error stops the run before anything
    /// of the failed step is saved.
    fn step(&mut self, real_a: &Tensor, real_b: &Tensor, rng: &mut StdRng) -> Result<Step>;
    /// Writes a checkpoint folder `run_dir/name` atomically.
    fn save_checkpoint(&self, run_dir: &Path, name: &str, state: &TrainState) -> Result<PathBuf>;
    /// Restores what `save_checkpoint` wrote; returns the checkpoint's state.
    fn load_checkpoint(&mut self, dir: &Path) -> Result<TrainState>;
    /// The mixed-precision loss scale to record (1 without it).
    fn loss_scale(&self) -> f64;
    /// The smallest image side the job's networks take.
    fn min_image_side(&self, config: &TrainConfig) -> u32;
    /// Every variable the job trains: what a data-parallel run copies from rank 0 to the others
    /// before the first step.
    fn replicated(&self) -> Vec<Tensor>;
}
