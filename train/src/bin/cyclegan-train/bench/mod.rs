//! `bench speed|quality|distill`: our numbers against the field's peers, as tables.
mod distill;
mod quality;
mod speed;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Training steps/s and generator latency against PyTorch eager on the same architecture,
    /// thread count and machine.
    Speed(speed::SpeedArgs),
    /// PSNR on the synthetic task after a fixed training budget.
    Quality(quality::QualityArgs),
    /// A teacher against its distilled students: parameters, GMAC, ONNX Runtime latency, PSNR
    /// against the teacher, FID against real images, PSNR against the ground truth.
    Distill(distill::DistillArgs),
}

pub fn run(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Speed(args) => speed::run(&args),
        BenchCommand::Quality(args) => quality::run(&args),
        BenchCommand::Distill(args) => distill::run(&args),
    }
}

/// How a benchmark times itself and its peer.
#[derive(clap::Args)]
pub struct Timing {
    /// Timed iterations per measurement (after warm-up).
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// CPU threads for both sides.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Python with the peer installed (default: the project's .venv, else python3).
    #[arg(long)]
    python: Option<PathBuf>,
}

impl Timing {
    pub fn python(&self) -> PathBuf {
        self.python.clone().unwrap_or_else(cyclegan_runtime::venv::python)
    }
}

/// A folder for a benchmark's files, removed by the caller.
fn scratch_dir(name: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("cyclegan-bench-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}
