//! Loads and augments batches on worker threads, a few batches ahead of the model. Every random
//! choice is drawn from a generator seeded by (seed, epoch, position), so an epoch's batches do
//! not depend on thread timing and a resumed run sees exactly the batches it would have seen.
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, bounded};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::dataset::{UnalignedDataset, load_rgb};
use super::transform::to_chw;
use crate::error::Result;

/// One batch of each domain as planar floats in [-1, 1].
#[derive(Debug)]
pub struct Batch {
    pub a: Vec<f32>,
    pub b: Vec<f32>,
    /// `[N, 3, H, W]` of `a`.
    pub shape_a: [i64; 4],
    pub shape_b: [i64; 4],
}

impl Batch {
    pub fn tensors(&self, device: tch::Device) -> (tch::Tensor, tch::Tensor) {
        let a = tch::Tensor::from_slice(&self.a).reshape(self.shape_a).to_device(device);
        let b = tch::Tensor::from_slice(&self.b).reshape(self.shape_b).to_device(device);
        (a, b)
    }
}

/// A generator for one (seed, epoch, stream) triple; splitmix64 decorrelates nearby inputs.
pub fn derived_rng(seed: u64, epoch: u64, stream: u64) -> StdRng {
    let mut z = seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    StdRng::seed_from_u64(z ^ (z >> 31))
}

/// The part of each epoch one data-parallel rank takes, as PyTorch's `DistributedSampler`:
/// the epoch's order padded (wrapping around) to a multiple of `size`, then every `size`-th
/// position from `rank`. Ranks' batch `k` together hold the positions a single process's batch
/// `k` of `size` times the batch size would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub rank: usize,
    pub size: usize,
}

impl Shard {
    pub const WHOLE: Shard = Shard { rank: 0, size: 1 };

    /// How many images of an epoch of `len` this shard takes.
    pub fn len(&self, len: usize) -> usize {
        len.div_ceil(self.size)
    }

    /// Its positions in the padded epoch order.
    fn positions(&self, len: usize) -> Vec<usize> {
        (0..self.len(len)).map(|i| i * self.size + self.rank).collect()
    }
}

/// The batches of one epoch, in order, starting at `start_batch`.
pub struct EpochLoader {
    receivers: Vec<Receiver<Result<Batch>>>,
    workers: Vec<JoinHandle<()>>,
    next: usize,
    remaining: usize,
}

impl EpochLoader {
    /// The batches of `shard` (`Shard::WHOLE` in a run of one process).
    pub fn new(
        data: Arc<UnalignedDataset>,
        batch_size: usize,
        seed: u64,
        epoch: u64,
        start_batch: usize,
        workers: usize,
        shard: Shard,
    ) -> Self {
        let mut order: Vec<usize> = (0..data.len()).collect();
        if !data.serial {
            order.shuffle(&mut derived_rng(seed, epoch, 0));
        }
        let order = Arc::new(order);
        let positions = Arc::new(shard.positions(data.len()));
        let n_batches = positions.len().div_ceil(batch_size);
        let remaining = n_batches.saturating_sub(start_batch);
        let n_workers = workers.clamp(1, remaining.max(1));
        let mut receivers = Vec::with_capacity(n_workers);
        let mut handles = Vec::with_capacity(n_workers);
        for w in 0..n_workers {
            let (tx, rx) = bounded(2);
            let (data, order, positions) = (data.clone(), order.clone(), positions.clone());
            handles.push(std::thread::spawn(move || {
                for batch in (start_batch + w..n_batches).step_by(n_workers) {
                    let mine = &positions[batch * batch_size..((batch + 1) * batch_size).min(positions.len())];
                    let result = load_batch(&data, &order, mine, seed, epoch);
                    if tx.send(result).is_err() {
                        return;
                    }
                }
            }));
            receivers.push(rx);
        }
        Self { receivers, workers: handles, next: 0, remaining }
    }

    pub fn len(&self) -> usize {
        self.remaining
    }

    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }
}

/// The batch of the images at `positions` of the (padded) epoch order.
fn load_batch(data: &UnalignedDataset, order: &[usize], positions: &[usize], seed: u64, epoch: u64) -> Result<Batch> {
    let n = positions.len() as i64;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let (mut size_a, mut size_b) = ((0, 0), (0, 0));
    for &position in positions {
        let mut rng = derived_rng(seed, epoch, position as u64 + 1);
        let (ia, ib) = data.pair(order[position % order.len()], position % order.len(), &mut rng);
        let img_a = data.augment.apply(load_rgb(&data.a.files[ia])?, &mut rng);
        let img_b = data.augment.apply(load_rgb(&data.b.files[ib])?, &mut rng);
        size_a = img_a.dimensions();
        size_b = img_b.dimensions();
        to_chw(&img_a, &mut a);
        to_chw(&img_b, &mut b);
    }
    Ok(Batch {
        a,
        b,
        shape_a: [n, 3, size_a.1 as i64, size_a.0 as i64],
        shape_b: [n, 3, size_b.1 as i64, size_b.0 as i64],
    })
}

impl Iterator for EpochLoader {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let rx = &self.receivers[self.next % self.receivers.len()];
        self.next += 1;
        self.remaining -= 1;
        Some(rx.recv().expect("data worker stopped before its last batch"))
    }
}

impl Drop for EpochLoader {
    fn drop(&mut self) {
        // Dropping the receivers makes blocked workers' sends fail, so they return.
        self.receivers.clear();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Preprocess;
    use crate::data::Augment;

    fn dataset(dir: &std::path::Path) -> Arc<UnalignedDataset> {
        for (d, n) in [("trainA", 5), ("trainB", 3)] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
            for i in 0..n {
                let img = image::RgbImage::from_pixel(12, 12, image::Rgb([i * 40, 0, 0]));
                img.save(dir.join(d).join(format!("{i}.png"))).unwrap();
            }
        }
        let aug = Augment { preprocess: Preprocess::ResizeAndCrop, load_size: 12, crop_size: 8, flip: true };
        Arc::new(UnalignedDataset::open(dir, "train", 0, aug, false, 1).unwrap())
    }

    #[test]
    fn batches_do_not_depend_on_worker_count_and_resume_mid_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let data = dataset(dir.path());
        let one: Vec<Batch> = EpochLoader::new(data.clone(), 2, 7, 3, 0, 1, Shard::WHOLE).map(|b| b.unwrap()).collect();
        let three: Vec<Batch> =
            EpochLoader::new(data.clone(), 2, 7, 3, 0, 3, Shard::WHOLE).map(|b| b.unwrap()).collect();
        assert_eq!(one.len(), 3);
        assert_eq!(one[2].shape_a, [1, 3, 8, 8]);
        for (x, y) in one.iter().zip(&three) {
            assert_eq!((&x.a, &x.b), (&y.a, &y.b));
        }
        let resumed: Vec<Batch> =
            EpochLoader::new(data.clone(), 2, 7, 3, 1, 2, Shard::WHOLE).map(|b| b.unwrap()).collect();
        assert_eq!(resumed.len(), 2);
        assert_eq!(resumed[0].a, one[1].a);
        let other_epoch: Vec<Batch> = EpochLoader::new(data, 2, 7, 4, 0, 1, Shard::WHOLE).map(|b| b.unwrap()).collect();
        assert!(one.iter().zip(&other_epoch).any(|(x, y)| x.a != y.a || x.b != y.b));
    }

    #[test]
    fn an_epoch_visits_every_image_of_the_larger_domain() {
        let dir = tempfile::tempdir().unwrap();
        let data = dataset(dir.path());
        let mut reds: Vec<u32> = EpochLoader::new(data, 1, 1, 1, 0, 2, Shard::WHOLE)
            .map(|b| ((b.unwrap().a[0] + 1.0) * 127.5).round() as u32)
            .collect();
        reds.sort();
        assert_eq!(reds, [0, 40, 80, 120, 160]);
    }

    #[test]
    fn shards_split_a_single_process_batch_between_ranks() {
        let dir = tempfile::tempdir().unwrap();
        let data = dataset(dir.path());
        let whole: Vec<Batch> =
            EpochLoader::new(data.clone(), 2, 7, 3, 0, 1, Shard::WHOLE).map(|b| b.unwrap()).collect();
        let ranks: Vec<Vec<Batch>> = (0..2)
            .map(|rank| {
                EpochLoader::new(data.clone(), 1, 7, 3, 0, 2, Shard { rank, size: 2 }).map(|b| b.unwrap()).collect()
            })
            .collect();
        // 5 images: padded to 6, 3 batches of 1 per rank; the last pair holds image 0 again.
        assert_eq!(ranks[0].len(), 3);
        assert_eq!(ranks[1].len(), 3);
        let pixels = 3 * 8 * 8;
        for (k, batch) in whole.iter().enumerate().take(2) {
            assert_eq!(batch.a[..pixels], ranks[0][k].a[..]);
            assert_eq!(batch.a[pixels..], ranks[1][k].a[..]);
            assert_eq!(batch.b[pixels..], ranks[1][k].b[..]);
        }
        assert_eq!(whole[2].a, ranks[0][2].a);
    }
}
