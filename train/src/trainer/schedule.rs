//! Learning rate per epoch: constant for `n_epochs`, then linear decay over `n_epochs_decay`
//! (the reference `lambda_rule`, with epochs counted from 1).
pub fn learning_rate(base: f64, epoch: usize, n_epochs: usize, n_epochs_decay: usize) -> f64 {
    let past = epoch.saturating_sub(n_epochs) as f64;
    base * (1.0 - past / (n_epochs_decay as f64 + 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_then_linear_to_zero() {
        assert_eq!(learning_rate(2e-4, 1, 100, 100), 2e-4);
        assert_eq!(learning_rate(2e-4, 100, 100, 100), 2e-4);
        assert!((learning_rate(2e-4, 101, 100, 100) - 2e-4 * 100.0 / 101.0).abs() < 1e-12);
        assert!((learning_rate(2e-4, 200, 100, 100) - 2e-4 / 101.0).abs() < 1e-12);
    }
}
