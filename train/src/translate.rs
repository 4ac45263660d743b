//! Test mode: load one generator from a checkpoint and translate images.
use std::path::{Path, PathBuf};

use cyclegan_model::checkpoint::{is_qat_checkpoint, read_scales};
use cyclegan_model::{Direction, GeneratorConfig};
use image::RgbImage;
use image::imageops::{self, FilterType};
use tch::nn::{self, Module};
use tch::{Device, Tensor};

use crate::checkpoint::{self, TrainState};
use crate::data::list_images;
use crate::error::{Error, Result};
use crate::imageio::{rgb_to_tensor, save_png, tensor_to_rgb};
use crate::model::fake_quant::QuantPoints;
use crate::model::{Generator, quantized_generator};

/// A generator loaded from a checkpoint, ready to translate.
pub struct Translator {
    net: Generator,
    device: Device,
    /// The generator's family and size.
    pub config: GeneratorConfig,
    /// Which of the checkpoint's generators it is.
    pub direction: Direction,
    /// The configuration of the run that trained it.
    pub state: TrainState,
    /// The checkpoint folder it came from.
    pub dir: PathBuf,
}

impl Translator {
    /// A checkpoint of `cyclegan-train qat` translates as its INT8 export does: fake-quantized
    /// with its learned scales.
    pub fn load(checkpoint: &Path, direction: Direction, device: Device) -> Result<Self> {
        let dir = checkpoint::resolve(checkpoint)?;
        let state = checkpoint::read_state(&dir)?;
        let mut vs = nn::VarStore::new(device);
        let cfg = state.config.model.generator();
        let quant: QuantPoints = if is_qat_checkpoint(&dir) {
            read_scales(&dir)?.into_iter().map(|(layer, s)| (layer, Tensor::from(s).to_device(device))).collect()
        } else {
            QuantPoints::new()
        };
        let net = quantized_generator(&vs.root(), &cfg, state.config.model.init_gain, &quant);
        checkpoint::load_network(&vs, &checkpoint::net_file(&dir, direction.network()))?;
        vs.freeze();
        Ok(Self { net, device, config: cfg, direction, state, dir })
    }

    /// Translates a batch `[N, 3, H, W]` in [-1, 1] (H, W multiples of 4).
    pub fn forward(&self, x: &Tensor) -> Tensor {
        tch::no_grad(|| self.net.forward(&x.to_device(self.device)))
    }

    /// [`Self::forward`] and the activations after the residual blocks `after`.
    pub fn forward_with_features(&self, x: &Tensor, after: &[usize]) -> (Tensor, Vec<Tensor>) {
        tch::no_grad(|| self.net.forward_with_features(&x.to_device(self.device), after))
    }

    /// Translates an image of any size: sides are rounded to multiples of 4 for the network and
    /// the result is resized back to the input's size.
    pub fn image(&self, img: &RgbImage) -> RgbImage {
        let (w, h) = img.dimensions();
        let (w4, h4) = ((w / 4 * 4).max(4), (h / 4 * 4).max(4));
        let input =
            if (w4, h4) == (w, h) { img.clone() } else { imageops::resize(img, w4, h4, FilterType::CatmullRom) };
        let out = tensor_to_rgb(&self.forward(&rgb_to_tensor(&input)));
        if (w4, h4) == (w, h) { out } else { imageops::resize(&out, w, h, FilterType::CatmullRom) }
    }
}

/// Translates a file or every image in a folder into `out` (PNG, same base names).
pub fn translate_path(
    t: &Translator,
    input: &Path,
    out: &Path,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<PathBuf>> {
    let files = if input.is_dir() {
        list_images(input, 0)?
    } else if input.is_file() {
        vec![input.to_path_buf()]
    } else {
        return Err(Error::Image {
            path: input.into(),
            message: "does not exist; pass an image or a folder of images".into(),
        });
    };
    if files.is_empty() {
        return Err(Error::Dataset(format!("{} holds no images", input.display())));
    }
    std::fs::create_dir_all(out)
        .map_err(|e| Error::io(format!("output folder {} is not writable", out.display()), e))?;
    let mut written = Vec::with_capacity(files.len());
    for (i, file) in files.iter().enumerate() {
        let img = crate::data::load_rgb(file)?;
        let stem = file.file_stem().unwrap_or_default().to_string_lossy();
        let dest = out.join(format!("{stem}.png"));
        save_png(&t.image(&img), &dest)?;
        written.push(dest);
        progress(i + 1, files.len());
    }
    Ok(written)
}
