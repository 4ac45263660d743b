//! Any bytes in a checkpoint's safetensors file end in tensors or an error naming the file, and
//! tensors that do not fit the generator are refused by the export, never a crash.
#![no_main]

use std::collections::HashMap;

use cyclegan_model::export::{ExportOptions, generator_graph};
use cyclegan_model::{Direction, Family, GeneratorConfig, checkpoint};
use cyclegan_onnx::{FloatType, Precision};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("fuzz-checkpoint-{}.safetensors", std::process::id()));
    std::fs::write(&path, data).unwrap();
    let Ok(tensors) = checkpoint::read_tensors(&path) else { return };
    let weights: HashMap<_, _> = tensors.into_iter().map(|t| (t.name.clone(), t)).collect();
    let cfg = GeneratorConfig { in_channels: 3, out_channels: 3, ngf: 2, n_blocks: 2, affine_norm: false, family: Family::Resnet };
    let opts = ExportOptions { direction: Direction::A2b, precision: Precision::Fp16, io_type: FloatType::F32 };
    let _ = generator_graph(&cfg, &weights, &opts);
});
