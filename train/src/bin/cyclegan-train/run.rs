//! `fit`, `distill` and `qat`: a training job from a recipe and flags, stoppable with Ctrl-C,
//! on one process or as the ranks of a data-parallel run.
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use cyclegan_train::checkpoint;
use cyclegan_train::config::{DistillFlags, Overrides, QatFlags, TrainConfig};
use cyclegan_train::dist::{self, DistOptions};
use cyclegan_train::trainer::{FitOptions, FitSummary};

/// What `fit`, `distill` and `qat` take.
#[derive(clap::Args)]
pub struct RunArgs {
    /// TOML recipe (configs/train/*.toml); without it the paper's defaults.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Continue a run: its folder (checkpoints/NAME) or one checkpoint folder in it. The
    /// run's saved configuration is used; flags still override it.
    #[arg(long, conflicts_with = "config")]
    resume: Option<PathBuf>,
    /// Stop after this many steps in total, saving `latest`.
    #[arg(long)]
    max_iters: Option<u64>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Data-parallel on this machine: start N ranks of this command (as torchrun
    /// --nproc-per-node N would), each with its shard of the data; the global batch is N times
    /// --batch-size.
    #[arg(long, value_name = "N", help_heading = "Data-parallel")]
    nproc: Option<usize>,
    /// The ranks' c10d backend: auto = NCCL on CUDA, Gloo on the CPU.
    #[arg(long, value_enum, default_value = "auto", help_heading = "Data-parallel")]
    dist_backend: dist::Backend,
    /// Seconds a rank waits for the others (rendezvous, each collective) before it stops and
    /// names the rank at fault.
    #[arg(long, default_value_t = 300, value_name = "S", help_heading = "Data-parallel")]
    dist_timeout_s: u64,
    #[command(flatten)]
    overrides: Box<Overrides>,
}

#[derive(clap::Args)]
pub struct DistillArgs {
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    distill: DistillFlags,
}

#[derive(clap::Args)]
pub struct QatArgs {
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    qat: QatFlags,
}

pub fn fit(args: RunArgs) -> Result<()> {
    run("fit", args, |_| {}, cyclegan_train::trainer::fit)
}

/// `distill`: the flags of `[distill]` make the section where the recipe has none.
pub fn distill(args: DistillArgs) -> Result<()> {
    let flags = args.distill;
    let section = move |c: &mut TrainConfig| {
        if flags.any() {
            flags.apply(c.distill.get_or_insert_with(Default::default));
        }
    };
    run("distill", args.run, section, cyclegan_train::distill::distill)
}

/// `qat`: the flags of `[qat]` make the section where the recipe has none.
pub fn qat(args: QatArgs) -> Result<()> {
    let flags = args.qat;
    let section = move |c: &mut TrainConfig| {
        if flags.any() {
            flags.apply(c.qat.get_or_insert_with(Default::default));
        }
    };
    run("qat", args.run, section, cyclegan_train::qat::qat)
}

/// A training job: `fit`, `distill` or `qat`.
type Job = fn(&TrainConfig, &FitOptions) -> cyclegan_train::Result<FitSummary>;

/// Runs `job` (the subcommand `command`) as `args` and its own section's flags (`section`) say,
/// and reports the run.
fn run(command: &str, args: RunArgs, section: impl FnOnce(&mut TrainConfig), job: Job) -> Result<()> {
    let RunArgs { config, resume, max_iters, quiet, nproc, dist_backend, dist_timeout_s, overrides } = args;
    let timeout = Duration::from_secs(dist_timeout_s);
    if let Some(n) = nproc.filter(|n| *n != 1) {
        // The terminal's Ctrl-C reaches every rank, which stops after its step; this process waits.
        ctrlc::set_handler(|| {}).context("cannot install the Ctrl-C handler")?;
        let code = dist::launch::this_command(n, timeout)?;
        if code != 0 {
            std::process::exit(code);
        }
        return Ok(());
    }
    let mut cfg = match (&config, &resume) {
        (Some(path), _) => TrainConfig::from_file(path)?,
        (None, Some(path)) => checkpoint::read_state(&checkpoint::resolve(path)?)?.config,
        (None, None) => TrainConfig::default(),
    };
    overrides.apply(&mut cfg);
    section(&mut cfg);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\nstopping after this step and saving `latest` (Ctrl-C again to quit now)");
    })
    .context("cannot install the Ctrl-C handler")?;
    let dist = DistOptions { backend: dist_backend, timeout };
    let options = FitOptions { resume, max_iterations: max_iters, stop: Some(stop), quiet, dist };
    let summary = job(&cfg, &options)?;
    // Under torchrun the other ranks only speak of errors.
    if dist::World::from_env()?.is_some_and(|w| w.rank != 0) {
        return Ok(());
    }
    if let Some(losses) = summary.last_losses {
        let text: Vec<String> = losses.iter().map(|(n, v)| format!("{n} {v:.4}")).collect();
        println!("last losses: {}", text.join(", "));
    }
    match &summary.last_checkpoint {
        Some(c) => println!("{} steps done; checkpoint {}", summary.iterations, c.display()),
        None => println!("{} steps done; nothing left to train", summary.iterations),
    }
    println!("run folder {} (losses.csv, loss_curves.png, samples/)", summary.run_dir.display());
    if summary.interrupted {
        println!("interrupted: continue with `cyclegan-train {command} --resume {}`", summary.run_dir.display());
    }
    Ok(())
}
