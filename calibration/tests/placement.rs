//! The Q/DQ placement is NVIDIA Model Optimizer's for TensorRT, position for position: on exports
//! of both generator families, Model Optimizer (`calibration/python/modelopt_peer.py`) and
//! `cyclegan-calib`'s writer put a DequantizeLinear before exactly the same inputs of the same
//! nodes, with as many Q/DQ pairs; every convolution TensorRT has an INT8 kernel for and every
//! residual Add reads INT8; no Q/DQ feeds
//! anything but a convolution, a residual Add or a Pad in front of a convolution, so TensorRT
//! needs no reformat between a DequantizeLinear and the kernel that consumes it. `qdq::read`
//! reads Model Optimizer's scales from its file as it reads ours, and its `max` scales are our
//! `minmax` ones.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use cyclegan_calibration::images::Sample;
use cyclegan_calibration::qdq::{self, Quantization, placement};
use cyclegan_calibration::report::write_inputs;
use cyclegan_calibration::scales::{self, Method};
use cyclegan_calibration::{compare, graph, observe};
use cyclegan_model::export::{ExportOptions, generator_graph};
use cyclegan_model::{Direction, Family, GeneratorConfig, NamedTensor, layout};
use cyclegan_onnx::GeneratorMetadata;
use cyclegan_onnx::contract::{INPUT_RANGE, OPSET};
use cyclegan_onnx::pb::ModelProto;
use cyclegan_onnx::{FloatType, Precision};
use cyclegan_runtime::preprocess::InferenceSize;
use indicatif::ProgressBar;
use rand::{Rng, SeedableRng};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// An FP32 export of `cfg` with random weights, with the metadata the runtime needs.
fn exported(cfg: &GeneratorConfig) -> ModelProto {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let weights = layout::parameters(cfg)
        .into_iter()
        .map(|(name, shape)| {
            let n = shape.iter().product::<i64>() as usize;
            let data = (0..n).map(|_| 0.1 * rng.random_range(-1.0f32..1.0)).collect();
            (name.clone(), NamedTensor { name, shape, data })
        })
        .collect();
    let opts = ExportOptions { direction: Direction::A2b, precision: Precision::Fp32, io_type: FloatType::F32 };
    let mut model = generator_graph(cfg, &weights, &opts).unwrap().finish(OPSET, "test", "0");
    GeneratorMetadata {
        direction: "a2b".into(),
        source_domain: "summer".into(),
        target_domain: "winter".into(),
        input_range: INPUT_RANGE.into(),
        training_resolution: 32,
        generator: serde_json::to_string(cfg).unwrap(),
        source_sha256: "0".repeat(64),
        precision: Precision::Fp32,
        tool_version: "0".into(),
    }
    .write_to(&mut model);
    model
}

/// Random inputs in [-1, 1].
fn random_samples() -> Vec<Sample> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    (0..4)
        .map(|i| Sample {
            path: format!("random_{i}").into(),
            tensor: (0..3 * 32 * 32).map(|_| rng.random_range(-1.0f32..1.0)).collect(),
            shape: [1, 3, 32, 32],
        })
        .collect()
}

/// Model Optimizer's `max` quantization of `model`, calibrated on `samples`.
fn modelopt(model: &ModelProto, samples: &[Sample], dir: &Path) -> ModelProto {
    let fp32 = dir.join("fp32.onnx");
    cyclegan_onnx::io::write_model(&fp32, model).unwrap();
    let inputs = dir.join("calibration.safetensors");
    write_inputs(&inputs, samples).unwrap();
    let out = Command::new(workspace().join(".venv/bin/python"))
        .arg(workspace().join("calibration/python/modelopt_peer.py"))
        .args([&fp32, &inputs, dir])
        .arg("max")
        .output()
        .expect("run ./scripts/install.sh for .venv");
    assert!(out.status.success(), "modelopt_peer.py: {}", String::from_utf8_lossy(&out.stderr));
    cyclegan_onnx::io::read_model(&dir.join("modelopt-max.onnx")).unwrap()
}

/// The op types of the nodes that read an activation's DequantizeLinear in one of our Q/DQ
/// models (ours quantizes activations only with QuantizeLinear; weights are INT8 initializers).
fn dequantized_consumers(model: &ModelProto) -> Vec<(String, String)> {
    let g = model.graph.as_ref().unwrap();
    let quantized: BTreeSet<&str> =
        g.node.iter().filter(|n| n.op_type == "QuantizeLinear").map(|n| n.output[0].as_str()).collect();
    let activation_dq: BTreeSet<&str> = g
        .node
        .iter()
        .filter(|n| n.op_type == "DequantizeLinear" && quantized.contains(n.input[0].as_str()))
        .map(|n| n.output[0].as_str())
        .collect();
    g.node
        .iter()
        .flat_map(|n| {
            n.input
                .iter()
                .filter(|i| activation_dq.contains(i.as_str()))
                .map(move |_| (n.name.clone(), n.op_type.clone()))
        })
        .collect()
}

#[test]
fn our_qdq_positions_are_model_optimizers_on_both_families() {
    let families = [
        GeneratorConfig {
            in_channels: 3,
            out_channels: 3,
            ngf: 8,
            n_blocks: 3,
            affine_norm: true,
            family: Family::Resnet,
        },
        // Model Optimizer quantizes grouped convolutions with a multiple of 8 output channels.
        GeneratorConfig {
            in_channels: 3,
            out_channels: 3,
            ngf: 16,
            n_blocks: 2,
            affine_norm: false,
            family: Family::Mobile,
        },
    ];
    for cfg in families {
        let dir = tempfile::tempdir().unwrap();
        let model = exported(&cfg);
        let samples = random_samples();
        let theirs = modelopt(&model, &samples, dir.path());

        let plan = graph::plan(&model, "export").unwrap();
        let scales: BTreeMap<String, f32> = plan.activations().into_iter().map(|a| (a, 0.02)).collect();
        let ours =
            qdq::rewrite(&model, &plan, &Quantization { activation_scales: scales, keep_fp: BTreeSet::new() }).unwrap();
        let (a, b) = (placement(&ours).unwrap(), placement(&theirs).unwrap());
        let only_ours: Vec<_> = a.int8_inputs.difference(&b.int8_inputs).collect();
        let only_theirs: Vec<_> = b.int8_inputs.difference(&a.int8_inputs).collect();
        assert!(
            only_ours.is_empty() && only_theirs.is_empty(),
            "{cfg:?}: INT8 inputs only we quantize {only_ours:?}, only Model Optimizer does {only_theirs:?}"
        );
        assert_eq!(a.activation_pairs, b.activation_pairs, "{cfg:?}");
        // Every convolution INT8 but those TensorRT has no INT8 kernel for (ngf 8's first and
        // last: 3 channels on one side, 8 on the other).
        let no_kernel = if cfg.ngf < 16 { 2 } else { 0 };
        assert_eq!(plan.float_convs.len(), no_kernel, "{cfg:?}: {:?}", plan.float_convs);
        assert_eq!(a.convs.0 + no_kernel, a.convs.1, "{cfg:?}");
        let residual_adds = plan.residual_adds().len();
        assert!(residual_adds > 0 && a.adds == (residual_adds, residual_adds), "{cfg:?}: {:?}", a.adds);

        for (node, op) in dequantized_consumers(&ours) {
            assert!(
                ["Conv", "ConvTranspose", "Add", "Pad"].contains(&op.as_str()),
                "{cfg:?}: `{node}` ({op}) reads a DQ"
            );
        }
        // A Pad that reads INT8 feeds a convolution that reads INT8 at the same scale.
        let q = qdq::read(&ours, &plan, "ours").unwrap();
        for l in plan.layers.iter().filter(|l| l.pad.is_some()) {
            assert!(q.activation_scales.contains_key(&l.input), "{}", l.name);
        }

        // Model Optimizer's file reads as a quantization of the same plan, every layer INT8, and
        // its `max` scales are our `minmax` ones on the same inputs (to its float16 precision).
        let read = qdq::read(&theirs, &plan, "modelopt-max.onnx").unwrap();
        assert!(read.keep_fp.is_empty(), "{:?}", read.keep_fp);
        let names: Vec<String> = plan.activations().into_iter().collect();
        let hist = observe::histograms(&model, &names, &samples, 2, &ProgressBar::hidden()).unwrap();
        let minmax = scales::observed(&hist, Method::MinMax);
        assert_eq!(read.activation_scales.len(), names.len());
        for (tensor, theirs) in &read.activation_scales {
            let ours = minmax[tensor];
            assert!((theirs / ours - 1.0).abs() < 1e-3, "{cfg:?}: `{tensor}`: Model Optimizer {theirs}, ours {ours}");
        }

        // `evaluate` takes Model Optimizer's file as it is (no metadata of ours), named by its file.
        let opts = compare::Options {
            reference: dir.path().join("fp32.onnx"),
            models: vec![dir.path().join("modelopt-max.onnx")],
            images: workspace().join("tests/fixtures/summer96"),
            num: 2,
            size: InferenceSize::Short(32),
            threads: 2,
            latency_runs: 0,
        };
        let rows = compare::compare(&opts).unwrap();
        let row = rows.last().unwrap();
        assert_eq!(row.method, "modelopt-max");
        assert_eq!((row.placement.convs, row.kept_fp), (b.convs, 0));
        assert!(row.psnr_db > 20.0 && row.psnr_db < 100.0, "{}", row.psnr_db);
    }
}
