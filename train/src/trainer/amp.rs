//! Dynamic loss scaling for mixed precision, as PyTorch's `GradScaler`: scale the loss so FP16
//! gradients do not underflow, unscale before the step, skip steps whose gradients overflowed.
use std::ffi::{c_char, c_void};

use tch::Tensor;

unsafe extern "C" {
    // train/csrc/amp.cpp: PyTorch's fused unscale and non-finite check, one host read.
    fn cg_amp_unscale(tensors: *const *mut c_void, n: usize, inv_scale: f64, err: *mut *mut c_char) -> i32;
}

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

    /// Divides the gradients by the scale; false when any of them is not finite. As PyTorch's
    /// GradScaler: one fused kernel per device and dtype, one read back to the host.
    pub fn unscale(&self, grads: impl Iterator<Item = Tensor>) -> bool {
        if !self.enabled {
            return true;
        }
        unscale_fused(grads.collect(), 1.0 / self.scale)
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

/// Multiplies every tensor by `inv_scale` in place; whether all their values were finite.
fn unscale_fused(mut grads: Vec<Tensor>, inv_scale: f64) -> bool {
    let ptrs: Vec<*mut c_void> = grads.iter_mut().map(|t| t.as_mut_ptr().cast()).collect();
    let mut err = std::ptr::null_mut();
    // SAFETY: at::Tensor pointers that live (in `grads`) for the call; `err` is set only on failure.
    match unsafe { cg_amp_unscale(ptrs.as_ptr(), ptrs.len(), inv_scale, &mut err) } {
        1 => true,
        0 => false,
        _ => panic!("unscaling the gradients: {}", crate::dist::take(err)),
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

    /// The per-tensor unscale this replaced: a multiply and a host read per gradient.
    fn unscale_one_by_one(grads: &mut [Tensor], inv: f64) -> bool {
        let mut finite = true;
        for g in grads {
            let _ = g.g_mul_scalar_(inv);
            finite &= g.isfinite().all().int64_value(&[]) == 1;
        }
        finite
    }

    #[test]
    fn the_fused_unscale_equals_the_per_tensor_one() {
        tch::manual_seed(7);
        let grads = || -> Vec<Tensor> {
            vec![
                Tensor::randn([64, 3, 7, 7], (tch::Kind::Float, tch::Device::Cpu)) * 4096.0,
                Tensor::randn([64], (tch::Kind::Float, tch::Device::Cpu)) * 3.0e5,
                Tensor::randn([5, 5], (tch::Kind::Double, tch::Device::Cpu)) * 70.0,
                Tensor::randn([8, 8], (tch::Kind::Half, tch::Device::Cpu)) * 1000.0,
            ]
        };
        let inv = 1.0 / 65536.0;
        for poison in [None, Some(f64::INFINITY), Some(f64::NEG_INFINITY), Some(f64::NAN)] {
            let fused = grads();
            let mut reference: Vec<Tensor> = fused.iter().map(Tensor::copy).collect();
            if let Some(v) = poison {
                let _ = fused[2].get(1).get(3).fill_(v);
                let _ = reference[2].get(1).get(3).fill_(v);
            }
            let expected = unscale_one_by_one(&mut reference, inv);
            assert_eq!(expected, poison.is_none());
            assert_eq!(unscale_fused(fused.iter().map(Tensor::shallow_clone).collect(), inv), expected, "{poison:?}");
            for (f, r) in fused.iter().zip(&reference) {
                assert_eq!(f.kind(), r.kind());
                let (f, r) = (f.to_kind(tch::Kind::Double), r.to_kind(tch::Kind::Double));
                let same = f.isclose(&r, 1e-6, 0.0, true).all().int64_value(&[]) == 1;
                assert!(same, "{poison:?}: the fused values differ");
            }
        }
        assert!(unscale_fused(Vec::new(), inv));
    }
}
