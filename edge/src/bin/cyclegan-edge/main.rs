//! `cyclegan-edge`: run a CycleGAN generator on live video, build its TensorRT engine, check the
//! machine, benchmark. Each subcommand's flags and handler live in the module named after it.
mod bench;
mod engine;
mod models;
mod run;

use anyhow::Result;
use clap::{Parser, Subcommand};
use cyclegan_edge::{Failure, doctor};

/// Exit statuses, for service managers (packaging/cyclegan-edge@.service) and scripts.
const EXIT_STATUSES: &str = "Exit status:
  0   done: the input ended, --num-frames were translated, or Ctrl-C finished the output
  1   another failure
  2   a command-line usage error
  75  the input is not there (yet) or went away: a camera or stream that did not deliver within
      --timeout-s, refused the connection, or stopped mid-run (the output is finished with the frames
      that came before); trying again later may work, so a service restarts
  78  a configuration error: the config file, a flag, the model, the output or a missing library or
      GStreamer element; nothing changes by retrying, so a service does not restart";

/// See EXIT_STATUSES.
const EXIT_INPUT_UNAVAILABLE: i32 = 75;
const EXIT_CONFIG: i32 = 78;

#[derive(Parser)]
#[command(
    version,
    long_version = concat!(env!("CARGO_PKG_VERSION"), "\nTensorRT headers: ", env!("CYCLEGAN_TENSORRT_HEADERS")),
    about = "CycleGAN generators on live video (GStreamer), on the CPU or TensorRT",
    after_long_help = EXIT_STATUSES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Translate a video stream: `run --input test:// --output out.mp4`
    #[command(after_long_help = EXIT_STATUSES)]
    Run(run::RunArgs),
    /// Build a TensorRT engine from a generator ONNX (on the machine that will run it)
    Build(engine::BuildArgs),
    /// What this machine offers: GPU, NVRTC, TensorRT, ONNX Runtime, GStreamer elements; and
    /// where TensorRT and a GPU exist, a self-test of an engine against the CPU backend
    Doctor {
        /// Skip the TensorRT self-test (it builds two small engines: about a minute on a Jetson).
        #[arg(long)]
        no_self_test: bool,
    },
    /// Generators for the runtime: the reference project's by name (`models list`, `models get
    /// NAME`), and files saved by PyTorch (`models import FILE.pth|FILE.onnx`)
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Benchmarks against the peers: speed against ONNX Runtime, INT8 and FP16 against FP32,
    /// temporal consistency, the CUDA frame kernels
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn doctor(self_test: bool) -> Result<()> {
    let checks = doctor::checks(self_test);
    print!("{}", doctor::table(&checks));
    if checks.iter().any(|c| c.status == doctor::Status::Failed) {
        anyhow::bail!("a check failed (see above)");
    }
    Ok(())
}

/// The exit status for `e`: the first of its causes that is an edge runtime error says which.
fn exit_status(e: &anyhow::Error) -> i32 {
    let failure = e.chain().find_map(|c| c.downcast_ref::<cyclegan_edge::Error>()).map(cyclegan_edge::Error::failure);
    match failure {
        Some(Failure::InputUnavailable) => EXIT_INPUT_UNAVAILABLE,
        Some(Failure::Config) => EXIT_CONFIG,
        Some(Failure::Other) | None => 1,
    }
}

/// Errors print once, with their causes on one line, the same in every binary of the project.
fn main() {
    if let Err(e) = dispatch() {
        eprintln!("error: {e:#}");
        std::process::exit(exit_status(&e));
    }
}

fn dispatch() -> Result<()> {
    match Cli::parse().command {
        Command::Run(args) => run::run(args),
        Command::Build(args) => engine::build(args),
        Command::Doctor { no_self_test } => doctor(!no_self_test),
        Command::Models(command) => models::run(command),
        Command::Bench(command) => bench::run(command),
    }
}
