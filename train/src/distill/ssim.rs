//! SSIM (Wang et al. 2004) as a differentiable loss: an 11x11 Gaussian window (sigma 1.5) over
//! each channel, constants for a data range of 1, valid positions only, as skimage and
//! pytorch-msssim compute it.
use tch::{Kind, Tensor};

const WINDOW: i64 = 11;
const SIGMA: f64 = 1.5;
const C1: f64 = 0.01 * 0.01;
const C2: f64 = 0.03 * 0.03;

fn gaussian_window(channels: i64, kind: Kind, device: tch::Device) -> Tensor {
    let x = Tensor::arange(WINDOW, (Kind::Float, device)) - (WINDOW / 2) as f64;
    let g = (-(&x * &x) / (2.0 * SIGMA * SIGMA)).exp();
    let g = &g / g.sum(Kind::Float);
    g.outer(&g).to_kind(kind).expand([channels, 1, WINDOW, WINDOW], false)
}

/// Mean SSIM of two `[N, C, H, W]` batches in [-1, 1] (both sides at least 11 pixels).
pub fn ssim(x: &Tensor, y: &Tensor) -> Tensor {
    let (x, y) = (((x + 1.0) * 0.5).to_kind(Kind::Float), ((y + 1.0) * 0.5).to_kind(Kind::Float));
    let channels = x.size()[1];
    let w = gaussian_window(channels, Kind::Float, x.device());
    let blur = |t: &Tensor| t.conv2d(&w, None::<Tensor>, [1, 1], [0, 0], [1, 1], channels);
    let (mu_x, mu_y) = (blur(&x), blur(&y));
    let (mu_xx, mu_yy, mu_xy) = (&mu_x * &mu_x, &mu_y * &mu_y, &mu_x * &mu_y);
    let var_x = blur(&(&x * &x)) - &mu_xx;
    let var_y = blur(&(&y * &y)) - &mu_yy;
    let cov = blur(&(&x * &y)) - &mu_xy;
    let map = (mu_xy * 2.0 + C1) * (cov * 2.0 + C2) / ((mu_xx + mu_yy + C1) * (var_x + var_y + C2));
    map.mean(Kind::Float)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_images_score_one_and_noise_lowers_it() {
        tch::manual_seed(0);
        let x = Tensor::rand([2, 3, 32, 40], (Kind::Float, tch::Device::Cpu)) * 2.0 - 1.0;
        assert!((ssim(&x, &x).double_value(&[]) - 1.0).abs() < 1e-5);
        let noisy = (&x + Tensor::randn_like(&x) * 0.2).clamp(-1.0, 1.0);
        let s = ssim(&x, &noisy).double_value(&[]);
        assert!(s < 0.95 && s > 0.0, "{s}");
        // Symmetric, as the formula is.
        assert!((s - ssim(&noisy, &x).double_value(&[])).abs() < 1e-6);
    }
}
