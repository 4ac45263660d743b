//! Same weights, same inputs: our networks and training step against PyTorch running the
//! reference modules (train/python/cyclegan_reference.py). The weights load into PyTorch with
//! `strict=True`, which also checks that our tensor names are the reference's.
mod common;

use std::collections::HashMap;

use cyclegan_train::config::TrainConfig;
use cyclegan_train::trainer::{CycleGan, NETWORKS};
use rand::SeedableRng;
use tch::nn::Module;
use tch::{Device, Kind, Tensor};

#[test]
fn forward_passes_and_training_steps_match_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = TrainConfig::default();
    cfg.model.ngf = 16;
    cfg.model.ndf = 16;
    cfg.model.n_blocks = 9;
    tch::manual_seed(11);
    let mut gan = CycleGan::new(&cfg, Device::Cpu);
    for (name, vs) in NETWORKS.iter().zip(&gan.stores) {
        let vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        Tensor::write_safetensors(&vars, dir.path().join(format!("weights_{name}.safetensors"))).unwrap();
    }
    let steps = 3;
    let rand = |shape: [i64; 4]| Tensor::rand(shape, (Kind::Float, Device::Cpu)) * 2 - 1;
    let mut inputs = vec![("x".to_string(), rand([2, 3, 72, 56]))];
    for i in 0..steps {
        inputs.push((format!("real_a{i}"), rand([1, 3, 64, 64])));
        inputs.push((format!("real_b{i}"), rand([1, 3, 64, 64])));
    }
    Tensor::write_safetensors(&inputs, dir.path().join("inputs.safetensors")).unwrap();
    let meta = serde_json::json!({"ngf": 16, "ndf": 16, "n_blocks": 9, "n_layers": 3, "steps": steps});
    std::fs::write(dir.path().join("parity.json"), meta.to_string()).unwrap();

    let x = &inputs[0].1;
    let ours: HashMap<&str, Tensor> = tch::no_grad(|| {
        HashMap::from([
            ("G_A", gan.g_a.forward(x)),
            ("G_B", gan.g_b.forward(x)),
            ("D_A", gan.d_a.forward(x)),
            ("D_B", gan.d_b.forward(x)),
        ])
    });
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let our_losses: Vec<[f64; 8]> = (0..steps)
        .map(|i| {
            let (a, b) = (&inputs[1 + 2 * i].1, &inputs[2 + 2 * i].1);
            gan.train_step(a, b, &mut rng).unwrap().0.values()
        })
        .collect();

    common::run_python(&["parity", dir.path().to_str().unwrap()]);

    let theirs: HashMap<String, Tensor> =
        Tensor::read_safetensors(dir.path().join("torch_out.safetensors")).unwrap().into_iter().collect();
    for (name, t) in &ours {
        let diff = (t - &theirs[*name]).abs().max().double_value(&[]);
        assert_eq!(t.size(), theirs[*name].size(), "{name} shape");
        assert!(diff < 1e-4, "{name}: max abs difference {diff}");
    }
    let torch_losses: Vec<HashMap<String, f64>> =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("torch_losses.json")).unwrap()).unwrap();
    for (step, (ours, theirs)) in our_losses.iter().zip(&torch_losses).enumerate() {
        for (name, ours) in cyclegan_train::trainer::Losses::NAMES.iter().zip(ours) {
            let theirs = theirs[*name];
            let rel = (ours - theirs).abs() / theirs.abs().max(1e-6);
            assert!(rel < 1e-3, "step {step} {name}: ours {ours}, PyTorch {theirs}, relative {rel}");
        }
    }
}
