//! INT8 fake quantization for quantization-aware training: the arithmetic of an ONNX
//! QuantizeLinear/DequantizeLinear pair with zero point 0 (round half to even, saturate to
//! [-128, 127]), so that a generator fine-tuned here computes what its Q/DQ export computes in
//! ONNX Runtime and TensorRT. Gradients pass straight through the rounding (the STE); through
//! the same expression an activation's scale gets the gradient of LSQ (Esser et al. 2020):
//! round(x/s) - x/s inside the range, -128 or 127 where it saturates.
use std::collections::BTreeMap;

use cyclegan_calibration::scales::MIN_SCALE;
use tch::Tensor;

/// Where a generator fake-quantizes: by ONNX node name (a Conv, ConvTranspose or residual Add,
/// `cyclegan-calib`'s layers), the scale of the activation that node reads. Layers not named
/// stay in floating point.
pub type QuantPoints = BTreeMap<String, Tensor>;

/// `x` through a per-tensor symmetric INT8 Q/DQ pair with `scale` (a scalar tensor).
pub fn fake_quant(x: &Tensor, scale: &Tensor) -> Tensor {
    let v = x / scale;
    let rounded = &v + (v.round() - &v).detach();
    rounded.clamp(-128.0, 127.0) * scale
}

/// A weight through per-channel symmetric INT8 (channels along `axis`): each channel's scale is
/// its largest magnitude / 127, observed from the weight at every step as `cyclegan-calib`'s
/// writer does, so no weight saturates and the export quantizes the same way.
pub fn fake_quant_weight(w: &Tensor, axis: i64) -> Tensor {
    let dims: Vec<i64> = (0..w.dim() as i64).filter(|d| *d != axis).collect();
    let scale = tch::no_grad(|| (w.abs().amax(dims.as_slice(), true) / 127.0).clamp_min(MIN_SCALE as f64));
    fake_quant(w, &scale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cyclegan_calibration::scales::quantize;
    use tch::{Device, Kind};

    #[test]
    fn rounds_and_saturates_as_quantize_linear() {
        let values = [-20.0f32, -1.3, -0.25, -0.15, 0.05, 0.15, 0.25, 0.35, 7.0, 12.69, 12.71, 40.0];
        let scale = 0.1f32;
        let x = Tensor::from_slice(&values);
        let y = Vec::<f32>::try_from(fake_quant(&x, &Tensor::from(scale))).unwrap();
        for (v, got) in values.iter().zip(y) {
            let want = quantize(*v, scale) as f32 * scale;
            assert!((got - want).abs() < 1e-6, "{v}: {got} vs {want}");
        }
    }

    #[test]
    fn gradients_pass_straight_through_and_the_scale_learns() {
        let x = Tensor::from_slice(&[0.26f32, -0.04, 50.0]).set_requires_grad(true);
        let s = Tensor::from(0.1f32).set_requires_grad(true);
        fake_quant(&x, &s).sum(Kind::Float).backward();
        let gx = Vec::<f32>::try_from(x.grad()).unwrap();
        assert_eq!(gx, [1.0, 1.0, 0.0], "identity inside the range, zero where it saturates");
        // LSQ: (round(2.6) - 2.6) + (round(-0.4) + 0.4) + 127.
        let gs = s.grad().double_value(&[]);
        assert!((gs - (0.4 + 0.4 + 127.0)).abs() < 1e-4, "{gs}");
    }

    #[test]
    fn weights_keep_their_largest_value_per_channel() {
        let w = Tensor::randn([4, 3, 3, 3], (Kind::Float, Device::Cpu));
        let q = fake_quant_weight(&w, 0);
        let amax = |t: &Tensor| t.abs().amax([1, 2, 3].as_slice(), false);
        assert!((amax(&w) - amax(&q)).abs().max().double_value(&[]) < 1e-6);
        let steps = &q / (amax(&w) / 127.0).view([4, 1, 1, 1]);
        let off_grid = (steps.round() - &steps).abs().max().double_value(&[]);
        assert!(off_grid < 1e-3, "every value is on its channel's grid: {off_grid}");
    }
}
