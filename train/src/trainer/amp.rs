//! Dynamic loss scaling for mixed precision, as PyTorch's `GradScaler`: scale the loss so FP16
//! gradients do not underflow, unscale before the step, skip steps whose gradients overflowed.
use tch::Tensor;

pub struct LossScaler {
    enabled: bool,
    pub scale: f64,
    good_steps: u32,
}

const GROWTH_INTERVAL: u32 = 2000;

impl LossScaler {
    pub fn new(enabled: bool) -> Self {
        Self { enabled, scale: if enabled { 65536.0 } else { 1.0 }, good_steps: 0 }
    }

    pub fn scale(&self, loss: &Tensor) -> Tensor {
        if self.enabled { loss * self.scale } else { loss.shallow_clone() }
    }

    /// Divides the gradients by the scale; false when any of them is not finite.
    pub fn unscale(&self, grads: impl Iterator<Item = Tensor>) -> bool {
        if !self.enabled {
            return true;
        }
        let inv = 1.0 / self.scale;
        let mut finite = true;
        tch::no_grad(|| {
            for mut g in grads {
                let _ = g.g_mul_scalar_(inv);
                finite &= g.isfinite().all().int64_value(&[]) == 1;
            }
        });
        finite
    }

    pub fn update(&mut self, ok: bool) {
        if !self.enabled {
            return;
        }
        if ok {
            self.good_steps += 1;
            if self.good_steps == GROWTH_INTERVAL {
                self.scale *= 2.0;
                self.good_steps = 0;
            }
        } else {
            self.scale /= 2.0;
            self.good_steps = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_halves_the_scale_and_is_reported() {
        let mut s = LossScaler::new(true);
        let grads = vec![Tensor::from_slice(&[1.0f32, f32::INFINITY])];
        assert!(!s.unscale(grads.into_iter()));
        s.update(false);
        assert_eq!(s.scale, 32768.0);
        let g = Tensor::from_slice(&[65536.0f32]);
        assert!(LossScaler::new(true).unscale(std::iter::once(g.shallow_clone())));
        assert_eq!(g.double_value(&[0]), 1.0);
        assert!(LossScaler::new(false).unscale(std::iter::once(Tensor::from_slice(&[f32::NAN]))));
    }
}
