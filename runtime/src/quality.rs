//! How close a variant's output tensor is to the reference's.

/// PSNR of `x` against `reference`, both in [-1,1] (peak-to-peak 2); 100 dB when they are equal.
pub fn psnr(x: &[f32], reference: &[f32]) -> f64 {
    let mse = x.iter().zip(reference).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>() / x.len().max(1) as f64;
    if mse == 0.0 { 100.0 } else { 10.0 * (4.0 / mse).log10() }
}

/// Mean of the per-image PSNRs.
pub fn mean_psnr(outputs: &[Vec<f32>], reference: &[Vec<f32>]) -> f64 {
    outputs.iter().zip(reference).map(|(o, r)| psnr(o, r)).sum::<f64>() / outputs.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psnr_is_over_the_tensors_range_of_two() {
        assert_eq!(psnr(&[0.5, -0.5], &[0.5, -0.5]), 100.0);
        // An error of 0.02 everywhere: mse 4e-4, 10 log10(4 / 4e-4) = 40 dB.
        assert!((psnr(&[0.02, 0.02], &[0.0, 0.0]) - 40.0).abs() < 1e-4);
        assert!((mean_psnr(&[vec![0.02], vec![0.0]], &[vec![0.0], vec![0.0]]) - 70.0).abs() < 1e-4);
    }
}
