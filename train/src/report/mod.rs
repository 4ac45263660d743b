//! What a person looks at during training: sample grids, the loss log and loss curves.
mod losslog;
mod plot;
mod samples;

pub use losslog::{LossLog, LossRow};
pub use plot::plot_losses;
pub use samples::sample_grid;
