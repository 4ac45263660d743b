//! CycleGAN generators as data, without libtorch: their families and layouts, the direction a
//! generator translates in, the checkpoint format (safetensors + `state.json`), the reader of
//! PyTorch `.pth` files and the ONNX export. `cyclegan-train` builds its tch modules from these
//! layouts and keeps only training; a machine without PyTorch (a Jetson) can still turn a
//! checkpoint or a `.pth` into ONNX.
//!
//! Modules from the bottom up: `tensor`, `pth` (the reader), `error`, `config` and `direction`,
//! `layout`, `checkpoint`, `onnx_weights` (a `torch.onnx.export` file's weights), then `import`
//! (a `.pth` into a checkpoint) and `export` (to ONNX).
pub mod checkpoint;
pub mod config;
pub mod direction;
pub mod error;
pub mod export;
pub mod import;
pub mod layout;
pub mod onnx_weights;
pub mod pth;
pub mod tensor;

pub use config::{Family, GeneratorConfig, ModelConfig, ModelFlags};
pub use direction::Direction;
pub use error::{Error, Result};
pub use tensor::NamedTensor;
