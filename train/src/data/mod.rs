//! Unaligned two-domain image data in the reference layout `DATAROOT/{trainA,trainB,testA,testB}`,
//! augmented on worker threads.
mod dataset;
pub mod loader;
mod transform;

pub use dataset::{UnalignedDataset, list_images, load_rgb};
pub use loader::{Batch, EpochLoader, Shard};
pub use transform::{Augment, to_chw};
