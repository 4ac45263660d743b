//! `models list|get|import`: generators for the runtime, without PyTorch: the reference
//! project's published ones by name, and files saved by PyTorch (`.pth` or `torch.onnx.export`).
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use cyclegan_edge::pretrained::{self, Fetch, SCHEME};
use cyclegan_hub::catalog::{self, PRETRAINED};
use cyclegan_model::Direction;
use cyclegan_model::checkpoint::Domains;
use cyclegan_model::export::{About, ExportOptions, SavedGenerator, is_onnx};
use cyclegan_onnx::pb::ModelProto;
use cyclegan_onnx::pb::tensor_shape_proto::dimension::Value as Dim;
use cyclegan_onnx::{FloatType, Precision};
use cyclegan_runtime::cpu::{CpuOptions, run_once};

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// The reference CycleGAN project's pretrained generators: what each translates and whether
    /// the cache has it
    List {
        /// The cache's root (default: $CYCLEGAN_CACHE_DIR, else ~/.cache/cyclegan-edge).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
    },
    /// Download one of them once (resumable) and write it as FP32 and FP16 ONNX with metadata:
    /// `models get summer2winter_yosemite`; `run --model pretrained:NAME` then uses it
    Get(GetArgs),
    /// A generator saved by PyTorch as FP32 and FP16 ONNX with metadata, ready for `run`, `build`
    /// and `cyclegan-calib`: a `torch.save` of the reference ResNet generator's state_dict (its
    /// `latest_net_G_A.pth`), read by a restricted unpickler so that nothing in it runs, or its
    /// `torch.onnx.export` (checked to compute the same as the rebuilt generator)
    Import(ImportArgs),
}

#[derive(Args)]
pub struct GetArgs {
    /// The generator's name (`models list`), e.g. summer2winter_yosemite.
    name: String,
    /// Folder for NAME.fp32.onnx and NAME.fp16.onnx (default: the cache, where `pretrained:NAME`
    /// finds them).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Download the .pth from here instead (a mirror); $CYCLEGAN_MIRROR replaces the server for
    /// every name.
    #[arg(long)]
    url: Option<String>,
    /// The SHA-256 the .pth must have (printed by an earlier `get`); a cached file that differs
    /// is downloaded again.
    #[arg(long)]
    sha256: Option<String>,
    /// The cache's root (default: $CYCLEGAN_CACHE_DIR, else ~/.cache/cyclegan-edge).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
}

#[derive(Args)]
pub struct ImportArgs {
    /// The `.pth` or `.onnx` file.
    file: PathBuf,
    /// Folder for NAME.fp32.onnx and NAME.fp16.onnx (NAME: the file's name without extension).
    #[arg(long, default_value = ".")]
    out: PathBuf,
    /// The domains it translates from and to, e.g. summer,winter (default: A,B).
    #[arg(long, value_name = "FROM,TO")]
    domains: Option<String>,
    /// Which generator of its CycleGAN it is: a2b (G_A) or b2a (G_B); recorded in the metadata.
    #[arg(long, value_enum, default_value = "a2b")]
    direction: Direction,
    /// The side of the images it was trained on.
    #[arg(long, default_value_t = Domains::default().crop_size)]
    training_resolution: u32,
    /// Refuse the file unless its generator has this many filters.
    #[arg(long)]
    ngf: Option<i64>,
}

pub fn run(command: ModelsCommand) -> Result<()> {
    match command {
        ModelsCommand::List { cache_dir } => list(cache_dir.as_deref()),
        ModelsCommand::Get(args) => get(args),
        ModelsCommand::Import(args) => import(args),
    }
}

fn list(cache_dir: Option<&Path>) -> Result<()> {
    println!("{:<24} {:<28} {:<6} dataset", "name", "translates", "cached");
    for p in PRETRAINED {
        let (from, to) = p.domains();
        let cached = if pretrained::cached_onnx(p, cache_dir).exists() { "yes" } else { "-" };
        println!("{:<24} {:<28} {cached:<6} {}", p.name, format!("{from} -> {to} ({})", p.direction.name()), p.dataset);
    }
    println!(
        "\nfrom {}/pretrained_models/NAME.pth (plain HTTP: a tampered file can hold wrong weights, never run code);\n\
         cache: {}",
        catalog::server(),
        cyclegan_hub::cache::pretrained(cache_dir).display()
    );
    Ok(())
}

fn get(args: GetArgs) -> Result<()> {
    let GetArgs { name, out, url, sha256, cache_dir } = args;
    let fetch = Fetch { url, sha256, cache_dir, progress: true };
    let got = pretrained::get(&name, &fetch, out.as_deref())?;
    println!("{name}: {}", got.summary);
    println!("  source sha256 {}", got.pth_sha256);
    println!("  fp32 {}", got.fp32.display());
    println!("  fp16 {}", got.fp16.display());
    let model = if out.is_some() { got.fp32.display().to_string() } else { format!("{SCHEME}{name}") };
    println!("run it: cyclegan-edge run --model {model} --input v4l2:///dev/video0 --output display://");
    Ok(())
}

/// `FROM,TO` of `--domains`, else A,B.
fn parse_domains(text: Option<&str>) -> Result<(String, String)> {
    let Some(text) = text else {
        let d = Domains::default();
        return Ok((d.domain_a, d.domain_b));
    };
    match text.split_once(',') {
        Some((from, to)) if !from.trim().is_empty() && !to.trim().is_empty() => {
            Ok((from.trim().to_string(), to.trim().to_string()))
        }
        _ => anyhow::bail!("--domains {text:?}: give the two domains as FROM,TO, e.g. summer,winter"),
    }
}

/// The input shape to compare an imported ONNX file with ours at: its own where fixed, else a
/// small image.
fn comparison_shape(model: &ModelProto) -> [usize; 4] {
    let mut shape = [1, 3, 64, 64];
    let dims = model.graph.as_ref().and_then(|g| g.input.first()).and_then(|i| i.r#type.as_ref()).and_then(|t| match t
        .value
        .as_ref()?
    {
        cyclegan_onnx::pb::type_proto::Value::TensorType(t) => t.shape.as_ref().map(|s| s.dim.clone()),
        _ => None,
    });
    for (slot, dim) in shape.iter_mut().zip(dims.unwrap_or_default()) {
        if let Some(Dim::DimValue(v)) = dim.value
            && v > 0
        {
            *slot = v as usize;
        }
    }
    shape
}

/// Runs the user's ONNX file and ours on the same input: a graph that only looks like the
/// reference generator (zero padding, another upsampling) is refused here.
fn check_same_function(original: &Path, ours: &ModelProto) -> Result<f32> {
    let theirs = cyclegan_onnx::read_model(original)?;
    let shape = comparison_shape(&theirs);
    let n: usize = shape.iter().product();
    let input: Vec<f32> = (0..n).map(|i| ((i as f32 * 0.618_034).fract() * 2.0 - 1.0) * 0.9).collect();
    let options = CpuOptions::default();
    let expected = run_once(&cyclegan_onnx::io::encode_model(&theirs), &input, shape, &options)
        .with_context(|| format!("running {} with ONNX Runtime", original.display()))?;
    let got = run_once(&cyclegan_onnx::io::encode_model(ours), &input, shape, &options)?;
    anyhow::ensure!(
        expected.len() == got.len(),
        "{}: its output has {} values for input {shape:?}, a generator's has {}",
        original.display(),
        expected.len(),
        got.len()
    );
    let worst = expected.iter().zip(&got).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    anyhow::ensure!(
        worst <= 1e-3,
        "{}: its weights fit a ResNet generator, but it computes something else (largest difference {worst:.3} \
         on a {}x{} image): other padding, upsampling or normalisation than the reference generator's",
        original.display(),
        shape[3],
        shape[2]
    );
    Ok(worst)
}

fn import(args: ImportArgs) -> Result<()> {
    let ImportArgs { file, out, domains, direction, training_resolution, ngf } = args;
    let domains = parse_domains(domains.as_deref())?;
    let name = file.file_stem().and_then(|s| s.to_str()).context("the file has no name")?.to_string();
    let generator = SavedGenerator::read(&file, ngf)?;
    let report = &generator.report;
    let about = About { domains: (&domains.0, &domains.1), training_resolution, url: None };
    // Both graphs are made (and an ONNX file's checked) before anything is written: a refused
    // file leaves nothing behind.
    let mut models = Vec::new();
    for precision in [Precision::Fp32, Precision::Fp16] {
        let opts = ExportOptions { direction, precision, io_type: FloatType::F32 };
        models.push((precision, generator.export(&opts, &about)?));
    }
    let checked = if is_onnx(&file) {
        let worst = check_same_function(&file, &models[0].1)?;
        format!("; computes what {} computes, within {worst:.1e}", file.display())
    } else {
        String::new()
    };
    std::fs::create_dir_all(&out).with_context(|| format!("--out {}: cannot create it", out.display()))?;
    for (precision, model) in models {
        let path = out.join(format!("{name}.{precision}.onnx"));
        cyclegan_onnx::write_model(&path, &model)?;
        println!(
            "wrote {} ({precision}: {}; {} -> {}; {} sha256 {}{checked})",
            path.display(),
            report.describe(),
            domains.0,
            domains.1,
            file.display(),
            generator.sha256()
        );
    }
    Ok(())
}
