//! History of generated images (Shrivastava et al.): the discriminator sees fakes from earlier
//! generators too, which damps oscillation. Same policy as the reference `ImagePool`.
use rand::Rng;
use tch::Tensor;

pub struct ImagePool {
    capacity: usize,
    images: Vec<Tensor>,
}

impl ImagePool {
    pub fn new(capacity: usize) -> Self {
        Self { capacity, images: Vec::new() }
    }

    /// Returns a batch of the same size: while filling up, the new images; then for each image,
    /// with probability 1/2 a stored one (which the new image replaces), else the new image.
    pub fn query(&mut self, batch: &Tensor, rng: &mut impl Rng) -> Tensor {
        if self.capacity == 0 {
            return batch.shallow_clone();
        }
        let out: Vec<Tensor> = (0..batch.size()[0])
            .map(|i| {
                let image = batch.narrow(0, i, 1).detach();
                if self.images.len() < self.capacity {
                    self.images.push(image.copy());
                    image
                } else if rng.random::<f64>() > 0.5 {
                    let slot = rng.random_range(0..self.capacity);
                    std::mem::replace(&mut self.images[slot], image.copy())
                } else {
                    image
                }
            })
            .collect();
        Tensor::cat(&out, 0)
    }

    pub fn images(&self) -> &[Tensor] {
        &self.images
    }

    pub fn restore(&mut self, images: Vec<Tensor>) {
        self.images = images;
        self.images.truncate(self.capacity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn fills_then_swaps() {
        let mut rng = StdRng::seed_from_u64(0);
        let mut pool = ImagePool::new(2);
        let img = |v: f64| Tensor::full([1, 1, 1, 1], v, (tch::Kind::Float, tch::Device::Cpu));
        assert_eq!(pool.query(&img(1.0), &mut rng).double_value(&[0, 0, 0, 0]), 1.0);
        assert_eq!(pool.query(&img(2.0), &mut rng).double_value(&[0, 0, 0, 0]), 2.0);
        let outs: Vec<f64> =
            (3..40).map(|v| pool.query(&img(v as f64), &mut rng).double_value(&[0, 0, 0, 0])).collect();
        let old = outs.iter().enumerate().filter(|(i, v)| **v != (*i + 3) as f64).count();
        assert!(old > 5 && old < 32, "{old} of 37 came from the pool");
        assert_eq!(pool.images().len(), 2);
    }
}
