//! Our CPU backend against ONNX Runtime from Python on the bundled demo generator, FP32 and FP16.
mod common;

use cyclegan_edge::backend::{Backend, CpuBackend, CpuOptions};
use cyclegan_edge::model::Model;
use cyclegan_edge::preprocess::Preprocessor;
use cyclegan_onnx::FloatType;

fn to_file(path: &std::path::Path, values: &[f32]) {
    std::fs::write(path, values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
}

fn from_file(path: &std::path::Path) -> Vec<f32> {
    std::fs::read(path).unwrap().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

/// max |ours - ORT Python| on two real frames (a batch of 2 at an odd multiple of 4).
fn worst_difference(model_path: &std::path::Path, model: &Model) -> f32 {
    let (w, h) = (132, 76);
    let mut pre = Preprocessor::default();
    let mut input = Vec::new();
    for seed in [0, 5] {
        let mut one = Vec::new();
        pre.to_tensor(&common::scene(200, 120, seed), (200, 120), (w, h), &mut one);
        input.extend(one);
    }
    let mut backend = CpuBackend::open(model, &CpuOptions { threads: 2, ..Default::default() }).unwrap();
    let mut ours = Vec::new();
    backend.run(&input, [2, 3, h, w], &mut ours).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (inp, out) = (dir.path().join("in.f32"), dir.path().join("out.f32"));
    to_file(&inp, &input);
    let (hs, ws) = (h.to_string(), w.to_string());
    common::ort_peer(&[
        "run",
        model_path.to_str().unwrap(),
        "2",
        inp.to_str().unwrap(),
        out.to_str().unwrap(),
        "2",
        "3",
        &hs,
        &ws,
    ]);
    let theirs = from_file(&out);
    assert_eq!(ours.len(), theirs.len());
    // It translates: the output is not the input.
    assert!(ours.iter().zip(&input).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max) > 0.1);
    ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max)
}

#[test]
fn cpu_backend_matches_onnxruntime_python_on_the_bundled_model() {
    let model = Model::bundled().unwrap();
    assert_eq!(model.io_type, FloatType::F32);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.onnx");
    std::fs::write(&path, &model.bytes).unwrap();
    let worst = worst_difference(&path, &model);
    assert!(worst < 1e-4, "FP32: max difference {worst}");

    let half = dir.path().join("demo.fp16.onnx");
    common::ort_peer(&["half", path.to_str().unwrap(), half.to_str().unwrap()]);
    let model = Model::load(Some(&half)).unwrap();
    assert_eq!(model.io_type, FloatType::F16);
    let worst = worst_difference(&half, &model);
    // The peer is ONNX Runtime in the desktop's Python. On x86_64 both sides run the same kernels;
    // on aarch64 (emulated, peer native) ONNX Runtime computes FP16 natively instead of in FP32,
    // which may move outputs in [-1, 1] by a few FP16 steps (one step at 1.0 is 1e-3).
    let tolerance = if cfg!(target_arch = "x86_64") { 1e-4 } else { 1e-2 };
    assert!(worst < tolerance, "FP16: max difference {worst}");
}

#[test]
fn a_missing_onnxruntime_library_is_reported_by_path() {
    let model = Model::bundled().unwrap();
    let missing = std::path::PathBuf::from("/no/such/libonnxruntime.so.1");
    let err = cyclegan_edge::backend::find_onnxruntime(Some(&missing)).unwrap_err().to_string();
    assert!(err.contains("/no/such/libonnxruntime.so.1"), "{err}");
    // The library found by default is the venv's, and it opens the model.
    let found = cyclegan_edge::backend::find_onnxruntime(None).unwrap();
    assert!(found.to_string_lossy().contains("onnxruntime"), "{}", found.display());
    assert!(CpuBackend::open(&model, &CpuOptions::default()).is_ok());
}

#[test]
fn forks_of_one_session_translate_at_once_as_the_session_alone() {
    let model = Model::bundled().unwrap();
    let mut pre = Preprocessor::default();
    let frames: Vec<(Vec<f32>, [usize; 4])> = [(0, 132, 76), (3, 100, 60), (5, 132, 76)]
        .into_iter()
        .map(|(seed, w, h)| {
            let mut tensor = Vec::new();
            pre.to_tensor(&common::scene(200, 120, seed), (200, 120), (w, h), &mut tensor);
            (tensor, [1, 3, h, w])
        })
        .collect();
    let mut backend = CpuBackend::open(&model, &CpuOptions { threads: 1, ..Default::default() }).unwrap();
    let alone: Vec<Vec<f32>> = frames
        .iter()
        .map(|(tensor, shape)| {
            let mut out = Vec::new();
            backend.run(tensor, *shape, &mut out).unwrap();
            out
        })
        .collect();
    let forks: Vec<Box<dyn Backend>> =
        (0..3).map(|_| backend.fork().expect("the CPU backend forks").unwrap()).collect();
    std::thread::scope(|scope| {
        let runs: Vec<_> = forks
            .into_iter()
            .enumerate()
            .map(|(i, mut fork)| {
                let frames = &frames;
                // Each fork runs every frame, starting at a different one, many times over.
                scope.spawn(move || {
                    let mut outputs = vec![Vec::new(); frames.len()];
                    for k in 0..12 {
                        let j = (i + k) % frames.len();
                        fork.run(&frames[j].0, frames[j].1, &mut outputs[j]).unwrap();
                    }
                    outputs
                })
            })
            .collect();
        for run in runs {
            assert!(run.join().unwrap() == alone, "a fork's translation differs from the session's alone");
        }
    });
    // The session still runs on its own after its forks.
    let mut out = Vec::new();
    backend.run(&frames[0].0, frames[0].1, &mut out).unwrap();
    assert!(out == alone[0]);
}
