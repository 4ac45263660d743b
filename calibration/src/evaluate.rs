//! Measuring a model variant against the FP32 model on held-out images: PSNR on the output
//! tensors ([-1,1], peak-to-peak 2) and SSIM on the output pictures.
use cyclegan_runtime::backend::Backend;
use cyclegan_runtime::cpu::CpuBackend;

use crate::Result;
use crate::images::Sample;

pub use cyclegan_runtime::quality::{mean_psnr, psnr};

/// A `[1,3,H,W]` tensor in [-1,1] as 8-bit planes.
pub fn to_pixels(t: &[f32]) -> Vec<f64> {
    t.iter().map(|v| ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as f64).collect()
}

/// SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, L 255) of two
/// `[1,3,H,W]` tensors, averaged over the channels and the valid window positions.
pub fn ssim(x: &[f32], y: &[f32], h: usize, w: usize) -> f64 {
    const R: usize = 5;
    let g: Vec<f64> = (0..=2 * R).map(|i| (-((i as f64 - R as f64).powi(2)) / (2.0 * 1.5f64.powi(2))).exp()).collect();
    let sum: f64 = g.iter().sum();
    let g: Vec<f64> = g.iter().map(|v| v / sum).collect();
    if h <= 2 * R || w <= 2 * R {
        return if x == y { 1.0 } else { 0.0 };
    }
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let (px, py) = (to_pixels(x), to_pixels(y));
    let blur = |img: &[f64]| -> Vec<f64> {
        let (ow, oh) = (w - 2 * R, h - 2 * R);
        let mut rows = vec![0f64; h * ow];
        for yy in 0..h {
            for xx in 0..ow {
                rows[yy * ow + xx] = (0..=2 * R).map(|k| g[k] * img[yy * w + xx + k]).sum();
            }
        }
        let mut out = vec![0f64; oh * ow];
        for yy in 0..oh {
            for xx in 0..ow {
                out[yy * ow + xx] = (0..=2 * R).map(|k| g[k] * rows[(yy + k) * ow + xx]).sum();
            }
        }
        out
    };
    let plane = h * w;
    let mut total = 0.0;
    for c in 0..3 {
        let a = &px[c * plane..(c + 1) * plane];
        let b = &py[c * plane..(c + 1) * plane];
        let prod = |u: &[f64], v: &[f64]| -> Vec<f64> { u.iter().zip(v).map(|(p, q)| p * q).collect() };
        let (ma, mb) = (blur(a), blur(b));
        let (saa, sbb, sab) = (blur(&prod(a, a)), blur(&prod(b, b)), blur(&prod(a, b)));
        let n = ma.len();
        let mut s = 0.0;
        for i in 0..n {
            let (va, vb, cov) = (saa[i] - ma[i] * ma[i], sbb[i] - mb[i] * mb[i], sab[i] - ma[i] * mb[i]);
            s += ((2.0 * ma[i] * mb[i] + c1) * (2.0 * cov + c2))
                / ((ma[i] * ma[i] + mb[i] * mb[i] + c1) * (va + vb + c2));
        }
        total += s / n as f64;
    }
    total / 3.0
}

/// Outputs of `backend` on every sample.
pub fn outputs(backend: &mut CpuBackend, samples: &[Sample]) -> Result<Vec<Vec<f32>>> {
    samples
        .iter()
        .map(|s| {
            let mut out = Vec::new();
            backend.run(&s.tensor, s.shape, &mut out)?;
            Ok(out)
        })
        .collect()
}

/// Mean SSIM of `outputs` against `reference`.
pub fn mean_ssim(outputs: &[Vec<f32>], reference: &[Vec<f32>], samples: &[Sample]) -> f64 {
    let n = outputs.len().max(1) as f64;
    outputs.iter().zip(reference).zip(samples).map(|((o, r), s)| ssim(o, r, s.shape[2], s.shape[3])).sum::<f64>() / n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psnr_and_ssim_of_known_pictures() {
        let a = vec![0.0f32; 3 * 16 * 16];
        // A constant offset of 0.02 on [-1,1] (peak-to-peak 2): MSE 4e-4 -> 10 log10(4 / 4e-4) = 40 dB.
        let b: Vec<f32> = a.iter().map(|v| v + 0.02).collect();
        assert!((psnr(&b, &a) - 40.0).abs() < 1e-4);
        assert_eq!(psnr(&a, &a), 100.0);
        assert!((ssim(&a, &a, 16, 16) - 1.0).abs() < 1e-12);
        // Noise lowers SSIM well below 1; a small uniform shift barely does.
        let noisy: Vec<f32> = a.iter().enumerate().map(|(i, _)| if i % 2 == 0 { 0.5 } else { -0.5 }).collect();
        assert!(ssim(&noisy, &a, 16, 16) < 0.2);
        assert!(ssim(&b, &a, 16, 16) > 0.99);
    }
}
