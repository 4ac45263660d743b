//! What takes one generator of a checkpoint: `translate`, `export`, `import` and `info`.
use std::path::PathBuf;

use anyhow::Result;
use cyclegan_calibration::trt_cache::{self, TrtVersion};
use cyclegan_model::Direction;
use cyclegan_onnx::{FloatType, GeneratorMetadata, Precision};
use cyclegan_runtime::size::Size;
use cyclegan_train::export::{ExportOptions, export_generator};
use cyclegan_train::translate::{Translator, translate_path};

use crate::progress_bar;

/// A checkpoint's generator: what every command that takes one names.
#[derive(clap::Args)]
pub struct GeneratorArgs {
    /// Run folder (uses its `latest`) or checkpoint folder.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Its generator: a2b (G_A) or b2a (G_B).
    #[arg(long, value_enum, default_value = "a2b")]
    pub direction: Direction,
}

#[derive(clap::Args)]
pub struct TranslateArgs {
    #[command(flatten)]
    generator: GeneratorArgs,
    /// An image or a folder of images.
    #[arg(long)]
    input: PathBuf,
    /// Folder for the translations (PNG, same base names).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value = "cpu")]
    device: String,
}

pub fn translate(args: TranslateArgs) -> Result<()> {
    let device = cyclegan_train::device::open(&args.device)?;
    let t = Translator::load(&args.generator.checkpoint, args.generator.direction, device)?;
    let (bar, progress) = progress_bar();
    let written = translate_path(&t, &args.input, &args.out, progress)?;
    bar.finish_and_clear();
    println!("translated {} image(s) into {}", written.len(), args.out.display());
    Ok(())
}

#[derive(clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    generator: GeneratorArgs,
    /// Weights and arithmetic: fp16 is what TensorRT's strongly typed networks need; int8
    /// (a Q/DQ model) from a checkpoint of `qat`.
    #[arg(long, value_enum, default_value = "fp32")]
    precision: Precision,
    /// Element type of `image` and `translated`.
    #[arg(long, value_enum, default_value = "fp32")]
    io_precision: FloatType,
    #[arg(long)]
    out: PathBuf,
    /// With --precision int8: also write a TensorRT 10 calibration cache (implicit INT8): the
    /// learned scales, and for the other tensors ranges observed on the run's calibration
    /// images.
    #[arg(long)]
    trt_cache: Option<PathBuf>,
    /// TensorRT version named in the cache header.
    #[arg(long, default_value_t = TrtVersion::JETPACK6, value_parser = parse_trt_version)]
    trt_version: TrtVersion,
}

fn parse_trt_version(s: &str) -> Result<TrtVersion, String> {
    s.parse().map_err(|e: cyclegan_calibration::Error| e.to_string())
}

pub fn export(args: ExportArgs) -> Result<()> {
    let GeneratorArgs { checkpoint, direction } = args.generator;
    if args.trt_cache.is_some() && args.precision != Precision::Int8 {
        anyhow::bail!(
            "--trt-cache comes with --precision int8 (a checkpoint of `qat`); for an FP32 export use \
             `cyclegan-calib --trt-cache`"
        );
    }
    let opts = ExportOptions { direction, precision: args.precision, io_type: args.io_precision };
    let model = export_generator(&checkpoint, &opts)?;
    cyclegan_onnx::write_model(&args.out, &model)?;
    if let Some(cache) = &args.trt_cache {
        let scales = cyclegan_train::qat::cache_scales(&checkpoint, direction, 0)?;
        cyclegan_onnx::io::write_atomic(cache, trt_cache::write(args.trt_version, &scales).as_bytes())?;
        println!("wrote {} (TensorRT calibration cache, {} tensors)", cache.display(), scales.len());
    }
    let meta = GeneratorMetadata::read_from(&model)?;
    println!(
        "wrote {} ({} graph, {} I/O, {} -> {}, trained at {}px)",
        args.out.display(),
        meta.precision,
        args.io_precision.name(),
        meta.source_domain,
        meta.target_domain,
        meta.training_resolution
    );
    Ok(())
}

#[derive(clap::Args)]
pub struct ImportArgs {
    #[arg(long)]
    pth: PathBuf,
    /// Checkpoint folder to create.
    #[arg(long)]
    out: PathBuf,
    /// Which generator the file is: a2b (G_A) or b2a (G_B).
    #[arg(long, value_enum, default_value = "a2b")]
    direction: Direction,
    /// Refuse the file unless its generator has this many filters.
    #[arg(long)]
    ngf: Option<i64>,
    /// List every matched tensor.
    #[arg(long)]
    verbose: bool,
}

pub fn import(args: ImportArgs) -> Result<()> {
    let (dir, report) = cyclegan_model::import::import_pth(&args.pth, &args.out, args.direction, args.ngf)?;
    if args.verbose {
        for (theirs, ours, shape) in &report.matched {
            println!("  {theirs:<40} -> {ours:<32} {shape:?}");
        }
    }
    println!("imported {} tensors: {}", report.matched.len(), report.describe());
    println!("wrote {} ({}); translate or export from it", dir.display(), args.direction.network());
    Ok(())
}

#[derive(clap::Args)]
pub struct InfoArgs {
    /// Run folder (uses its `latest`) or checkpoint folder.
    #[arg(long, required_unless_present = "onnx", conflicts_with = "onnx")]
    checkpoint: Option<PathBuf>,
    /// An exported generator (fp32, fp16 or quantized).
    #[arg(long)]
    onnx: Option<PathBuf>,
    /// The checkpoint's generator to count.
    #[arg(long, value_enum, default_value = "a2b")]
    direction: Direction,
    /// Input size WxH.
    #[arg(long, default_value = "256x256")]
    size: Size,
}

pub fn info(args: InfoArgs) -> Result<()> {
    let model = match (&args.checkpoint, &args.onnx) {
        (_, Some(path)) => cyclegan_onnx::read_model(path)?,
        (Some(dir), None) => {
            let opts = ExportOptions { direction: args.direction, precision: Precision::Fp32, io_type: FloatType::F32 };
            export_generator(dir, &opts)?
        }
        (None, None) => unreachable!("clap requires --checkpoint or --onnx"),
    };
    let (width, height) = (args.size.width as i64, args.size.height as i64);
    let cost = cyclegan_onnx::cost::cost(&model, height, width)?;
    print!("{}", cost.table(height, width));
    Ok(())
}
