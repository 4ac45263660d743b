//! `models import`: generators saved by PyTorch as ONNX for the runtime, without PyTorch.
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use cyclegan_model::Direction;
use cyclegan_model::checkpoint::Domains;
use cyclegan_model::export::{ExportOptions, PthGenerator};
use cyclegan_onnx::{FloatType, Precision};

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// A ResNet generator saved by PyTorch (a `torch.save` of its state_dict, as the reference
    /// implementation's `latest_net_G_A.pth`) as FP32 and FP16 ONNX with metadata, ready for
    /// `run`, `build` and `cyclegan-calib`. The file is read by a restricted unpickler: nothing
    /// in it runs.
    Import {
        /// The `.pth` file.
        pth: PathBuf,
        /// Folder for NAME.fp32.onnx and NAME.fp16.onnx (NAME: the file's name without `.pth`).
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
    },
}

pub fn run(command: ModelsCommand) -> Result<()> {
    let ModelsCommand::Import { pth, out, domains, direction, training_resolution, ngf } = command;
    let domains = match &domains {
        None => {
            let d = Domains::default();
            (d.domain_a, d.domain_b)
        }
        Some(text) => match text.split_once(',') {
            Some((from, to)) if !from.trim().is_empty() && !to.trim().is_empty() => {
                (from.trim().to_string(), to.trim().to_string())
            }
            _ => anyhow::bail!("--domains {text:?}: give the two domains as FROM,TO, e.g. summer,winter"),
        },
    };
    let name = pth.file_stem().and_then(|s| s.to_str()).context("the .pth file has no name")?.to_string();
    let generator = PthGenerator::read(&pth, ngf)?;
    let report = &generator.report;
    // Both graphs are made before anything is written: a refused file leaves nothing behind.
    let mut models = Vec::new();
    for precision in [Precision::Fp32, Precision::Fp16] {
        let opts = ExportOptions { direction, precision, io_type: FloatType::F32 };
        models.push((precision, generator.export(&opts, (&domains.0, &domains.1), training_resolution)?));
    }
    std::fs::create_dir_all(&out).with_context(|| format!("--out {}: cannot create it", out.display()))?;
    for (precision, model) in models {
        let file = out.join(format!("{name}.{precision}.onnx"));
        cyclegan_onnx::write_model(&file, &model)?;
        println!(
            "wrote {} ({precision}: ResNet generator, ngf {}, {} blocks, {} instance norm; {} -> {}; {} sha256 {})",
            file.display(),
            report.ngf,
            report.n_blocks,
            if report.affine_norm { "affine" } else { "plain" },
            domains.0,
            domains.1,
            pth.display(),
            generator.sha256()
        );
    }
    Ok(())
}
