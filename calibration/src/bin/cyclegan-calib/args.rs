//! The flags of calibration and of `evaluate`, and the options they make.
use std::path::PathBuf;

use cyclegan_calibration::calibrate::Options;
use cyclegan_calibration::graph::Residual;
use cyclegan_calibration::scales::Method;
use cyclegan_calibration::trt_cache::TrtVersion;
use cyclegan_runtime::preprocess::InferenceSize;

/// The generator and the images, as both modes take them.
#[derive(clap::Args)]
pub struct Inputs {
    /// Generator ONNX exported by `cyclegan-train export` (FP32).
    #[arg(long)]
    pub model: PathBuf,
    /// Folder of images (like the frames the model will see); when calibrating, the last fifth
    /// is held out to measure quality.
    #[arg(long)]
    pub images: PathBuf,
    /// Images to use at most.
    #[arg(long, default_value_t = Options::DEFAULT_NUM)]
    pub num: usize,
    /// Inference size as the edge runtime's `inference-size`: auto, a shorter side, or WxH.
    #[arg(long, default_value = "auto", value_parser = parse_size)]
    pub size: InferenceSize,
    /// CPU threads for ONNX Runtime (0: all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

#[derive(clap::Args)]
pub struct CalibrateArgs {
    #[command(flatten)]
    inputs: Inputs,
    /// Activation thresholds: mse (smallest expected squared error), minmax, percentile
    /// (99.99), percentile:P, trt-entropy (TensorRT's KL calibrator, which clips too much for
    /// generators).
    #[arg(long, default_value = "mse", value_parser = parse_method)]
    method: Method,
    /// Where the Q/DQ model goes.
    #[arg(long)]
    out: PathBuf,
    /// Also write a TensorRT calibration cache (implicit INT8 on TensorRT 10).
    #[arg(long)]
    trt_cache: Option<PathBuf>,
    /// TensorRT version named in the cache header.
    #[arg(long, default_value_t = TrtVersion::JETPACK6, value_parser = parse_version)]
    trt_version: TrtVersion,
    /// Layers to leave in floating point (comma-separated node names).
    #[arg(long, value_delimiter = ',', conflicts_with = "target_psnr")]
    keep_fp: Vec<String>,
    /// Leave every residual Add in floating point (no Q/DQ on its branch input); every
    /// convolution stays INT8.
    #[arg(long)]
    float_residual: bool,
    /// Keep the most damaging layers in floating point until the INT8 model reaches this PSNR
    /// (dB, vs FP32 on held-out images).
    #[arg(long)]
    target_psnr: Option<f64>,
    /// Keep the method's thresholds as they are: no output-aware refinement (each threshold
    /// tried a little lower and higher, kept where the output on a few calibration images is
    /// closer to FP32's).
    #[arg(long)]
    no_refine: bool,
    /// Folder for report.json, report.md, compare.png and heldout.safetensors.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Also write the calibration images' input tensors to the report folder
    /// (calibration.safetensors, 0.75 MiB per 256x256 image), e.g. for another quantizer to
    /// calibrate on the same tensors.
    #[arg(long, requires = "report")]
    save_inputs: bool,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

impl CalibrateArgs {
    pub fn options(self) -> Options {
        let CalibrateArgs {
            inputs,
            method,
            out,
            trt_cache,
            trt_version,
            keep_fp,
            float_residual,
            target_psnr,
            no_refine,
            report,
            save_inputs,
            quiet,
        } = self;
        Options {
            model: inputs.model,
            images: inputs.images,
            num: inputs.num,
            method,
            size: inputs.size,
            out,
            trt_cache,
            trt_version,
            keep_fp,
            residual: if float_residual { Residual::Float } else { Residual::Int8 },
            target_psnr,
            refine: !no_refine,
            report,
            save_inputs,
            threads: inputs.threads,
            quiet,
        }
    }
}

fn parse_method(s: &str) -> Result<Method, String> {
    s.parse().map_err(|e: cyclegan_calibration::Error| e.to_string())
}

fn parse_size(s: &str) -> Result<InferenceSize, String> {
    s.parse().map_err(|e: cyclegan_runtime::Error| e.to_string())
}

fn parse_version(s: &str) -> Result<TrtVersion, String> {
    s.parse().map_err(|e: cyclegan_calibration::Error| e.to_string())
}
