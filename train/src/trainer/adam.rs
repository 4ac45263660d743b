//! Adam, written out so that its state (moments and step count) can be checkpointed and
//! restored exactly; the update is PyTorch's `torch.optim.Adam` without weight decay.
use tch::Tensor;

use crate::error::{Error, Result};

pub struct Adam {
    params: Vec<(String, Tensor)>,
    exp_avg: Vec<Tensor>,
    exp_avg_sq: Vec<Tensor>,
    step: i64,
    pub lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
}

impl Adam {
    /// `params` are (name, variable) pairs; names key the saved state.
    pub fn new(params: Vec<(String, Tensor)>, lr: f64, beta1: f64, beta2: f64) -> Self {
        let zeros = |p: &Tensor| p.zeros_like().detach();
        let exp_avg = params.iter().map(|(_, p)| zeros(p)).collect();
        let exp_avg_sq = params.iter().map(|(_, p)| zeros(p)).collect();
        Self { params, exp_avg, exp_avg_sq, step: 0, lr, beta1, beta2, eps: 1e-8 }
    }

    pub fn zero_grad(&mut self) {
        for (_, p) in &mut self.params {
            p.zero_grad();
        }
    }

    /// The variables it steps.
    pub fn parameters(&self) -> impl Iterator<Item = Tensor> + '_ {
        self.params.iter().map(|(_, p)| p.shallow_clone())
    }

    pub fn grads(&self) -> impl Iterator<Item = Tensor> + '_ {
        self.params.iter().map(|(_, p)| p.grad()).filter(Tensor::defined)
    }

    pub fn step(&mut self) {
        self.step += 1;
        let bias1 = 1.0 - self.beta1.powi(self.step as i32);
        let bias2_sqrt = (1.0 - self.beta2.powi(self.step as i32)).sqrt();
        let step_size = self.lr / bias1;
        tch::no_grad(|| {
            for ((_, p), (m, v)) in self.params.iter_mut().zip(self.exp_avg.iter_mut().zip(&mut self.exp_avg_sq)) {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let _ = m.lerp_(&g, 1.0 - self.beta1);
                let _ = v.g_mul_scalar_(self.beta2).g_add_(&(&g * &g * (1.0 - self.beta2)));
                let denom = v.sqrt() / bias2_sqrt + self.eps;
                let _ = p.g_add_(&(&*m / denom * -step_size));
            }
        });
    }

    pub fn steps(&self) -> i64 {
        self.step
    }

    /// The moments as named tensors (`NAME.exp_avg`, `NAME.exp_avg_sq`) and the step count.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.params.len() + 1);
        for ((name, _), (m, v)) in self.params.iter().zip(self.exp_avg.iter().zip(&self.exp_avg_sq)) {
            out.push((format!("{name}.exp_avg"), m.shallow_clone()));
            out.push((format!("{name}.exp_avg_sq"), v.shallow_clone()));
        }
        out.push(("step".into(), Tensor::from(self.step)));
        out
    }

    /// Restores what `state` saved; every moment must be present with its parameter's shape.
    pub fn load_state(&mut self, saved: &[(String, Tensor)], file: &std::path::Path) -> Result<()> {
        let find = |key: &str| saved.iter().find(|(n, _)| n == key).map(|(_, t)| t);
        let step = find("step").ok_or_else(|| Error::checkpoint(file, "optimizer state has no `step`"))?;
        tch::no_grad(|| -> Result<()> {
            for ((name, p), (m, v)) in self.params.iter().zip(self.exp_avg.iter_mut().zip(&mut self.exp_avg_sq)) {
                for (suffix, slot) in [("exp_avg", &mut *m), ("exp_avg_sq", &mut *v)] {
                    let key = format!("{name}.{suffix}");
                    let t = find(&key).ok_or_else(|| Error::checkpoint(file, format!("missing {key}")))?;
                    if t.size() != p.size() {
                        return Err(Error::checkpoint(
                            file,
                            format!("{key} has shape {:?}, the model needs {:?}", t.size(), p.size()),
                        ));
                    }
                    slot.copy_(t);
                }
            }
            Ok(())
        })?;
        self.step = step.int64_value(&[]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn minimises_a_quadratic_and_round_trips_state() {
        let x = Tensor::from_slice(&[3.0f32, -2.0]).set_requires_grad(true);
        let mut adam = Adam::new(vec![("x".into(), x.shallow_clone())], 0.1, 0.9, 0.999);
        for _ in 0..300 {
            adam.zero_grad();
            (&x * &x).sum(Kind::Float).backward();
            adam.step();
        }
        assert!(x.abs().max().double_value(&[]) < 0.05, "{x}");
        let y = Tensor::zeros([2], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let mut other = Adam::new(vec![("x".into(), y)], 0.1, 0.9, 0.999);
        other.load_state(&adam.state(), std::path::Path::new("mem")).unwrap();
        assert_eq!(other.steps(), 300);
        let wrong = Tensor::zeros([3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let mut bad = Adam::new(vec![("x".into(), wrong)], 0.1, 0.9, 0.999);
        assert!(bad.load_state(&adam.state(), std::path::Path::new("mem")).is_err());
    }
}
