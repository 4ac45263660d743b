//! `bench speed|int8|temporal|streams|kernels`: the runtime against its peers, as tables.
use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use cyclegan_edge::backend::BackendKind;
use cyclegan_edge::bench::speed::SpeedOptions;
use cyclegan_edge::bench::{self, BenchOptions, kernels, streams, temporal};
use cyclegan_runtime::size::Size;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Our CPU backend against ONNX Runtime in Python, and the pipeline's fps against the
    /// backend's alone.
    Speed {
        #[command(flatten)]
        timing: Timing,
        /// Frames through the pipeline.
        #[arg(long, default_value_t = 60)]
        frames: u32,
        /// Python with onnxruntime (default: the project's .venv, else python3).
        #[arg(long)]
        python: Option<PathBuf>,
    },
    /// The FP16 graph of --model and its Q/DQ model (--int8) against the FP32 graph, on the CPU
    /// backend.
    Int8 {
        #[command(flatten)]
        timing: Timing,
        /// A Q/DQ model of --model's generator (cyclegan-calib, or `cyclegan-train export
        /// --precision int8`).
        #[arg(long)]
        int8: PathBuf,
    },
    /// Temporal consistency per temporal-smoothing value: Lai et al.'s warping error on a pan, a
    /// zoom, a rotation and a smooth deformation, and the flicker of a still scene with noise,
    /// on sequences made from --input's images.
    Temporal {
        /// Generator ONNX (default: the bundled demo).
        #[arg(long)]
        model: Option<PathBuf>,
        /// A folder of images to make the sequences from.
        #[arg(long)]
        input: PathBuf,
        /// temporal-smoothing values to compare.
        #[arg(long, value_delimiter = ',', default_value = "0,0.5,0.8")]
        smoothing: Vec<f64>,
        /// Frames per sequence.
        #[arg(long, default_value_t = cyclegan_runtime::motion::DEFAULT_FRAMES)]
        sequence_frames: usize,
        /// Sequences are made from at most this many of --input's images (0: all).
        #[arg(long, default_value_t = 8)]
        max_images: usize,
        /// The backend: cpu, tensorrt or auto.
        #[arg(long, default_value = "cpu")]
        backend: BackendKind,
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
    /// Streams sharing one model in one process (frames batched) against a process per stream:
    /// aggregate fps, latency percentiles, resident memory.
    Streams {
        /// Stream counts to compare.
        #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
        streams: Vec<usize>,
        /// Frame size WxH of the test patterns.
        #[arg(long, default_value = "640x360")]
        size: Size,
        /// Frames per stream.
        #[arg(long, default_value_t = 150)]
        frames: u64,
        /// 0: the patterns run as fast as the model takes them; N: live at N fps each, as
        /// cameras are.
        #[arg(long, default_value_t = 0)]
        framerate: u32,
        /// Generator ONNX (default: the bundled demo).
        #[arg(long)]
        model: Option<PathBuf>,
        /// The backend: cpu, tensorrt or auto.
        #[arg(long, default_value = "cpu")]
        backend: BackendKind,
        /// `run --max-batch` of the shared side (0: the backend's choice).
        #[arg(long, default_value_t = 0)]
        max_batch: u32,
        /// `run --concurrent-batches` of the shared side (0: one per stream up to the cores).
        #[arg(long, default_value_t = 0)]
        concurrent_batches: u32,
        /// Interleaved rounds; medians are reported.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// The CUDA frame kernels' throughput against the GPU's own frame copy, per pixel format.
    Kernels {
        /// Frame size WxH.
        #[arg(long, default_value = "1920x1080")]
        frame: Size,
        /// Inference tensor size WxH (multiples of 4).
        #[arg(long, default_value = "512x288")]
        size: Size,
        #[arg(long, default_value_t = 200)]
        iters: usize,
    },
}

/// How the backend is timed.
#[derive(clap::Args)]
pub struct Timing {
    /// Generator ONNX (default: the bundled demo).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Inference size WxH (multiples of 4).
    #[arg(long, default_value = "256x256")]
    size: Size,
    #[arg(long, default_value_t = 2)]
    threads: usize,
    #[arg(long, default_value_t = 20)]
    iters: usize,
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Interleaved rounds of all measurements; medians are reported.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
}

/// `size`, refused unless the generator takes it.
fn generator_size(size: Size) -> Result<(usize, usize)> {
    if !size.fits_the_generator() {
        anyhow::bail!("--size {size}: both sides must be multiples of 4");
    }
    Ok((size.width as usize, size.height as usize))
}

impl Timing {
    fn options(self) -> Result<BenchOptions> {
        let size = generator_size(self.size)?;
        let Timing { model, threads, iters, warmup, rounds, .. } = self;
        Ok(BenchOptions { model, size, threads, iters, warmup, rounds })
    }
}

pub fn run(command: BenchCommand) -> Result<()> {
    let table = match command {
        BenchCommand::Speed { timing, frames, python } => {
            let python = python.unwrap_or_else(cyclegan_runtime::venv::python);
            bench::table(&bench::speed::speed(&timing.options()?, &SpeedOptions { frames, python })?)
        }
        BenchCommand::Int8 { timing, int8 } => bench::table(&bench::int8::int8(&timing.options()?, &int8)?),
        BenchCommand::Temporal { model, input, smoothing, sequence_frames, max_images, backend, threads } => {
            let opts = temporal::TemporalOptions {
                model,
                backend,
                threads,
                input,
                frames: sequence_frames,
                max_images,
                smoothing,
            };
            temporal::table(&temporal::run(&opts)?)
        }
        BenchCommand::Streams {
            streams,
            size,
            frames,
            framerate,
            model,
            backend,
            max_batch,
            concurrent_batches,
            rounds,
        } => {
            let mut run_args = vec!["--backend".into(), backend.to_string()];
            let shared_args = vec![
                "--max-batch".into(),
                max_batch.to_string(),
                "--concurrent-batches".into(),
                concurrent_batches.to_string(),
            ];
            if let Some(model) = model {
                run_args.extend(["--model".to_string(), model.display().to_string()]);
            }
            let opts = streams::StreamsOptions {
                exe: std::env::current_exe()?,
                streams,
                size: (size.width, size.height),
                frames,
                framerate,
                run_args,
                shared_args,
                rounds,
            };
            streams::table(&streams::run(&opts)?)
        }
        BenchCommand::Kernels { frame, size, iters } => {
            let (frame, size) = ((frame.width as usize, frame.height as usize), generator_size(size)?);
            let (device, rows) = kernels::run(frame, size, iters)?;
            kernels::table(&device, frame, size, &rows)
        }
    };
    print!("{table}");
    Ok(())
}
