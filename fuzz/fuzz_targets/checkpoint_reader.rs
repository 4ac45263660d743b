//! Any bytes in a checkpoint's safetensors file end in loaded weights or an error naming the
//! file, never a crash.
#![no_main]

use cyclegan_train::checkpoint::load_network;
use cyclegan_train::model::{Family, GeneratorConfig, generator};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("fuzz-checkpoint-{}.safetensors", std::process::id()));
    std::fs::write(&path, data).unwrap();
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let cfg = GeneratorConfig { in_channels: 3, out_channels: 3, ngf: 2, n_blocks: 2, affine_norm: false, family: Family::Resnet };
    let _net = generator(&vs.root(), &cfg, 0.02);
    let _ = load_network(&vs, &path);
});
