//! The training loop: data, steps, learning-rate schedule, logs, samples and checkpoints, for
//! any [`Job`]: CycleGAN itself (`fit`), the distillation of a student (`crate::distill`) or
//! quantization-aware fine-tuning (`crate::qat`).
mod adam;
mod amp;
mod checkpointing;
mod cyclegan;
mod job;
mod pool;
mod schedule;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use tch::{Device, Tensor};

pub use adam::Adam;
pub use amp::LossScaler;
pub use cyclegan::{CycleGan, Losses, NETWORKS, Visuals};
pub use job::{Job, Step};
pub use schedule::learning_rate;

use crate::checkpoint::{self, TrainState};
use crate::config::{OutputConfig, TrainConfig};
use crate::data::{Augment, EpochLoader, Shard, UnalignedDataset, loader::derived_rng};
use crate::dist::{self, DistOptions, Group, World};
use crate::error::{Error, Result};
use crate::imageio::save_png;
use crate::report::{LossLog, LossRow, plot_losses, sample_grid};

/// Salt that separates the image pools' random stream from the data's.
const POOL_STREAM: u64 = 0x5EED_0000_0000;

#[derive(Debug, Default, Clone)]
pub struct FitOptions {
    /// Continue from this checkpoint (or run folder's `latest`).
    pub resume: Option<PathBuf>,
    /// Stop (and save `latest`) after this many steps in total.
    pub max_iterations: Option<u64>,
    /// Set by a Ctrl-C handler: finish the step, save `latest`, return.
    pub stop: Option<Arc<AtomicBool>>,
    /// Hide the progress bar.
    pub quiet: bool,
    /// How the ranks of a data-parallel run talk (used only under torchrun or `--nproc`).
    pub dist: DistOptions,
}

#[derive(Debug, Clone)]
pub struct FitSummary {
    pub run_dir: PathBuf,
    pub iterations: u64,
    pub last_checkpoint: Option<PathBuf>,
    /// The last step's losses, named.
    pub last_losses: Option<Vec<(&'static str, f64)>>,
    pub interrupted: bool,
}

/// The run folder of a checkpoint: the folder that holds it.
fn run_dir_of(checkpoint_dir: &Path) -> Result<PathBuf> {
    let real = checkpoint_dir.canonicalize().map_err(|e| Error::checkpoint(checkpoint_dir, e.to_string()))?;
    Ok(real.parent().expect("a checkpoint folder has a parent").to_path_buf())
}

fn prepare_run_dir(dir: &Path) -> Result<()> {
    let unwritable = |e: std::io::Error| {
        Error::io(format!("output folder {} is not writable (choose another --checkpoints-dir)", dir.display()), e)
    };
    std::fs::create_dir_all(dir.join("samples")).map_err(unwritable)?;
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"").map_err(unwritable)?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// The run folder and, when resuming, the checkpoint to resume from; a new run refuses a folder
/// that already holds one.
fn open_run(config: &TrainConfig, options: &FitOptions) -> Result<(PathBuf, Option<PathBuf>)> {
    match &options.resume {
        Some(path) => {
            let dir = checkpoint::resolve(path)?;
            Ok((run_dir_of(&dir)?, Some(dir)))
        }
        None => {
            let run_dir = config.run_dir();
            if run_dir.join(checkpoint::LATEST).exists() {
                return Err(Error::checkpoint(
                    &run_dir,
                    "already holds a training run; pass --resume to continue it or choose another --name",
                ));
            }
            Ok((run_dir, None))
        }
    }
}

/// The checkpoint a step ends with, if any: each epoch's end (kept as `epoch_NNNN` every
/// `save_epoch_freq` epochs and after the last one, else a rolling `iter_N`), every
/// `save_latest_freq` steps within an epoch, and a stop mid-epoch.
fn checkpoint_after(
    out: &OutputConfig,
    total_epochs: usize,
    iteration: u64,
    epoch: usize,
    epoch_done: bool,
    stop: bool,
) -> Option<String> {
    let rolling = || format!("iter_{iteration:08}");
    if epoch_done {
        let keep = out.save_epoch_freq > 0 && epoch.is_multiple_of(out.save_epoch_freq) || epoch == total_epochs;
        return Some(if keep { format!("epoch_{epoch:04}") } else { rolling() });
    }
    let periodic = out.save_latest_freq > 0 && iteration.is_multiple_of(out.save_latest_freq as u64);
    (stop || periodic).then(rolling)
}

fn progress_bar(total_steps: u64, position: u64, quiet: bool) -> ProgressBar {
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(total_steps) };
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} steps, ETA {eta} | {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_position(position);
    bar
}

/// Trains CycleGAN with `config` (or, with `options.resume`, continues a checkpointed run whose
/// configuration `config` must then be).
pub fn fit(config: &TrainConfig, options: &FitOptions) -> Result<FitSummary> {
    config.validate()?;
    if config.distill.is_some() {
        return Err(Error::InvalidValue {
            key: "distill".into(),
            message: "this configuration distills a student: run `cyclegan-train distill` with it".into(),
        });
    }
    if config.qat.is_some() {
        return Err(Error::InvalidValue {
            key: "qat".into(),
            message: "this configuration fine-tunes for INT8: run `cyclegan-train qat` with it".into(),
        });
    }
    let data = |config: &TrainConfig| {
        let d = &config.data;
        UnalignedDataset::open(
            &d.dataroot,
            "train",
            d.max_dataset_size,
            Augment::from_config(d),
            d.serial_batches,
            d.workers(),
        )
    };
    run(config, options, data, |device, _| Ok(CycleGan::new(config, device)))
}

/// The device of this rank: CUDA device LOCAL_RANK when the run is on CUDA.
fn rank_device(name: &str, world: &World) -> Result<Device> {
    match crate::device::parse(name)? {
        Device::Cpu => Ok(Device::Cpu),
        _ => {
            let count = tch::Cuda::device_count() as usize;
            if world.local_rank >= count {
                return Err(Error::Distributed(format!(
                    "LOCAL_RANK {} has no CUDA device: this machine shows {count} (run at most {count} ranks per \
                     machine, or check CUDA_VISIBLE_DEVICES)",
                    world.local_rank
                )));
            }
            Ok(Device::Cuda(world.local_rank))
        }
    }
}

/// Threads per rank: the configured number, else the machine's cores shared out among its
/// ranks (unless OMP_NUM_THREADS says otherwise), else libtorch's default.
fn threads_per_rank(configured: usize, world: Option<&World>) -> usize {
    match world {
        _ if configured > 0 => configured,
        Some(w) if w.local_size > 1 && std::env::var_os("OMP_NUM_THREADS").is_none() => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            (cores / w.local_size).max(1)
        }
        _ => 0,
    }
}

/// Runs `job` (made by `make` on the run's device, given the run folder) over the batches of
/// `data` as `config` says: the loop `fit`, `distill` and `qat` share. Under torchrun (or
/// `fit --nproc`) each rank runs this with its shard of the data.
pub fn run<J: Job>(
    config: &TrainConfig,
    options: &FitOptions,
    data: impl FnOnce(&TrainConfig) -> Result<UnalignedDataset>,
    make: impl FnOnce(Device, &Path) -> Result<J>,
) -> Result<FitSummary> {
    let world = World::from_env()?;
    if let (Some(_), Some(reason)) = (&world, J::ONE_PROCESS) {
        return Err(Error::Distributed(format!("{} runs in one process: {reason}", J::VERB)));
    }
    let device = match &world {
        Some(w) => rank_device(&config.train.device, w)?,
        None => crate::device::open(&config.train.device)?,
    };
    let threads = threads_per_rank(config.train.threads, world.as_ref());
    if threads > 0 {
        tch::set_num_threads(threads as i32);
    }
    let group = world.map(|w| Group::join(&w, &options.dist, device)).transpose()?.map(Arc::new);
    let _active = group.clone().map(dist::activate);
    let result = run_rank(config, options, data, make, device, group.as_deref());
    if let (Err(e), Some(g)) = (&result, &group)
        && !matches!(e, Error::Collective(_))
    {
        g.fail(&e.to_string());
    }
    result
}

fn run_rank<J: Job>(
    config: &TrainConfig,
    options: &FitOptions,
    data: impl FnOnce(&TrainConfig) -> Result<UnalignedDataset>,
    make: impl FnOnce(Device, &Path) -> Result<J>,
    device: Device,
    group: Option<&Group>,
) -> Result<FitSummary> {
    let t = &config.train;
    let shard = group.map_or(Shard::WHOLE, |g| Shard { rank: g.world().rank, size: g.world().size });
    let lead = shard.rank == 0;
    let config_text = toml::to_string_pretty(config).expect("config serialises");
    if let Some(g) = group {
        let rank0 = g.rank0_value("config", &config_text)?;
        if let Some(difference) = dist::first_difference(&rank0, &config_text) {
            return Err(Error::Distributed(format!(
                "rank {}'s configuration differs from rank 0's: {difference} (rank 0's first); start every rank \
                 with the same --config and flags",
                shard.rank
            )));
        }
    }

    let (run_dir, resume_dir) = open_run(config, options)?;
    if lead {
        prepare_run_dir(&run_dir)?;
    }

    tch::manual_seed(t.seed as i64);
    let mut model = make(device, &run_dir)?;
    let mut state = checkpoint::new_state(config);
    state.world_size = shard.size;
    let mut resumed_from = None;
    if let Some(dir) = &resume_dir {
        let saved = model.load_checkpoint(dir)?;
        state.next_epoch = saved.next_epoch;
        state.next_batch = saved.next_batch;
        state.iteration = saved.iteration;
        state.seed = saved.seed;
        resumed_from = Some(saved);
    }
    if let Some(g) = group {
        g.broadcast(&model.replicated(), "the broadcast of rank 0's weights")?;
    }
    if lead {
        std::fs::write(run_dir.join("config.toml"), &config_text)
            .map_err(|e| Error::io(format!("cannot write {}", run_dir.join("config.toml").display()), e))?;
    }

    let workers = config.data.workers();
    let data = data(config)?;
    data.check_batchable(config.data.batch_size)?;
    data.check_min_side(model.min_image_side(config))?;
    let data = Arc::new(data);
    let batch_size = config.data.batch_size;
    let batches_per_epoch = shard.len(data.len()).div_ceil(batch_size);
    let total_steps = (config.total_epochs() * batches_per_epoch) as u64;
    if let Some(saved) = resumed_from.filter(|s| s.world_size != shard.size) {
        // The ranks' batches k cover the first k × ranks × batch positions of an epoch.
        let done = saved.next_batch * saved.world_size * saved.config.data.batch_size;
        state.next_batch = done / (shard.size * batch_size);
        if lead {
            eprintln!(
                "note: resuming a run of {} rank(s) on {}: the global batch is now {} (was {}); epoch {} continues \
                 at batch {}",
                saved.world_size,
                shard.size,
                shard.size * batch_size,
                saved.world_size * saved.config.data.batch_size,
                state.next_epoch,
                state.next_batch
            );
        }
    }

    let loss_names = model.loss_names();
    let mut log =
        if lead { Some(LossLog::open(&run_dir.join("losses.csv"), &loss_names, state.iteration)?) } else { None };
    let bar = progress_bar(total_steps, state.iteration, options.quiet || !lead);
    if lead {
        let ranks = if shard.size > 1 {
            format!(", {} ranks x batch {batch_size} = global batch {}", shard.size, shard.size * batch_size)
        } else {
            String::new()
        };
        bar.println(format!(
            "{} {} ({} A / {} B images, {} steps per epoch, {} epochs{ranks}) on {:?} into {}",
            J::VERB,
            config.data.dataroot.display(),
            data.a.files.len(),
            data.b.files.len(),
            batches_per_epoch,
            config.total_epochs(),
            device,
            run_dir.display()
        ));
    }

    let mut summary = FitSummary {
        run_dir: run_dir.clone(),
        iterations: state.iteration,
        last_checkpoint: None,
        last_losses: None,
        interrupted: false,
    };
    let mut window = (Instant::now(), 0usize);
    let out = &config.output;
    let base_lr = if t.scale_lr { t.lr * shard.size as f64 } else { t.lr };
    // Each rank's pools draw their own stream; rank 0's is a single process's.
    let pool_stream = state.seed ^ POOL_STREAM ^ (shard.rank as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);

    'epochs: for epoch in state.next_epoch..=config.total_epochs() {
        state.lr = learning_rate(base_lr, epoch, t.n_epochs, t.n_epochs_decay);
        model.set_lr(state.lr);
        let start = if epoch == state.next_epoch { state.next_batch } else { 0 };
        let loader = EpochLoader::new(data.clone(), batch_size, state.seed, epoch as u64, start, workers, shard);
        for (batch_index, batch) in (start..).zip(loader) {
            let batch = batch?;
            let (real_a, real_b) = batch.tensors(device);
            let mut rng = derived_rng(pool_stream, epoch as u64, batch_index as u64);
            let mut step = model.step(&real_a, &real_b, &mut rng)?;
            state.iteration += 1;
            state.next_epoch = epoch;
            state.next_batch = batch_index + 1;
            if state.next_batch == batches_per_epoch {
                state.next_epoch = epoch + 1;
                state.next_batch = 0;
            }
            state.loss_scale = model.loss_scale();
            let mut stop = options.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst))
                || options.max_iterations.is_some_and(|m| state.iteration >= m);
            if let Some(g) = group {
                // The global batch's losses, and a stop any rank asked for, on every rank.
                let mut shared = step.losses.clone();
                shared.push(if stop { 1.0 } else { 0.0 });
                let shared_t = Tensor::from_slice(&shared);
                g.average(std::slice::from_ref(&shared_t), "the all-reduce of the step's losses")?;
                let shared = Vec::<f64>::try_from(&shared_t)?;
                stop = shared[shared.len() - 1] > 0.0;
                step.losses = shared[..shared.len() - 1].to_vec();
            }
            window.1 += batch.shape_a[0] as usize * shard.size;
            summary.last_losses = Some(loss_names.iter().copied().zip(step.losses.iter().copied()).collect());
            bar.inc(1);

            if let Some(log) = log.as_mut().filter(|_| state.iteration.is_multiple_of(out.log_freq as u64)) {
                let images_per_s = window.1 as f64 / window.0.elapsed().as_secs_f64().max(1e-9);
                window = (Instant::now(), 0);
                bar.set_message(format!(
                    "epoch {epoch}/{} {images_per_s:.2} img/s {}",
                    config.total_epochs(),
                    step.progress
                ));
                log.push(LossRow {
                    iteration: state.iteration,
                    epoch,
                    lr: state.lr,
                    losses: step.losses,
                    images_per_s,
                })?;
            }
            if lead && out.sample_freq > 0 && state.iteration.is_multiple_of(out.sample_freq as u64) {
                let path = run_dir.join("samples").join(format!("iter_{:08}.png", state.iteration));
                save_png(&sample_grid(&step.samples), &path)?;
            }
            let epoch_done = state.next_batch == 0;
            if lead
                && let Some(name) =
                    checkpoint_after(out, config.total_epochs(), state.iteration, epoch, epoch_done, stop)
            {
                summary.last_checkpoint = Some(save_latest(&run_dir, &name, &model, &state)?);
            }
            if lead
                && epoch_done
                && let Some(log) = &log
            {
                plot_losses(J::TITLE, &loss_names, &log.rows, &run_dir.join("loss_curves.png"))?;
            }
            if stop {
                // Not the step limit: a Ctrl-C, here or on another rank.
                summary.interrupted = options.max_iterations.is_none_or(|m| state.iteration < m);
                break 'epochs;
            }
        }
    }
    bar.finish_and_clear();
    if let Some(g) = group {
        // Rank 0 serves the rendezvous: nobody leaves before everybody is done.
        g.barrier("the barrier at the end of the run")?;
    }
    summary.iterations = state.iteration;
    Ok(summary)
}

/// Saves a checkpoint, points `latest` at it and removes every rolling checkpoint but it (kept
/// epoch checkpoints stay).
fn save_latest(run_dir: &Path, name: &str, model: &impl Job, state: &TrainState) -> Result<PathBuf> {
    let dir = model.save_checkpoint(run_dir, name, state)?;
    checkpoint::point_latest(run_dir, name)?;
    checkpoint::prune_rolling(run_dir, name);
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_follow_the_reference_policy() {
        let out = OutputConfig { save_epoch_freq: 5, save_latest_freq: 100, ..OutputConfig::default() };
        let at = |iteration, epoch, epoch_done, stop| checkpoint_after(&out, 12, iteration, epoch, epoch_done, stop);
        assert_eq!(at(7, 1, false, false), None);
        assert_eq!(at(200, 2, false, false).as_deref(), Some("iter_00000200"));
        assert_eq!(at(7, 1, false, true).as_deref(), Some("iter_00000007"));
        assert_eq!(at(80, 4, true, false).as_deref(), Some("iter_00000080"));
        assert_eq!(at(100, 5, true, false).as_deref(), Some("epoch_0005"));
        assert_eq!(at(240, 12, true, true).as_deref(), Some("epoch_0012"));
        let never = OutputConfig { save_epoch_freq: 0, save_latest_freq: 0, ..out };
        assert_eq!(checkpoint_after(&never, 12, 100, 5, false, false), None);
        assert_eq!(checkpoint_after(&never, 12, 100, 5, true, false).as_deref(), Some("iter_00000100"));
    }
}
