//! `cyclegan-calib` on the bundled demo generator with real synthetic summer images: the Q/DQ
//! model passes `onnx.checker`, ONNX Runtime runs it and measures what our report says; the
//! TensorRT cache, `--keep-fp`, `--float-residual`, the thresholds of `--method mse` and the MAC
//! share of the sensitivity search do what they claim; bad input is refused with clear messages.
use cyclegan_onnx::contract::{INPUT, OUTPUT};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixtures() -> PathBuf {
    workspace().join("tests/fixtures/summer96")
}

fn demo_model() -> PathBuf {
    workspace().join("models/summer2winter-demo/generator.onnx")
}

/// `cyclegan-calib`, through `CYCLEGAN_TEST_RUNNER` (qemu) when the tests run emulated for
/// another architecture (scripts/cross-test.sh).
fn calib(args: &[&str]) -> Output {
    let bin = env!("CARGO_BIN_EXE_cyclegan-calib");
    let mut cmd = match std::env::var("CYCLEGAN_TEST_RUNNER") {
        Ok(runner) if !runner.is_empty() => {
            let mut cmd = Command::new(runner);
            cmd.arg(bin);
            cmd
        }
        _ => Command::new(bin),
    };
    // On 2 threads; calibrating without progress bars (`evaluate` draws none).
    let (common, args): (&[&str], &[&str]) = match args {
        ["evaluate", rest @ ..] => (&["evaluate", "--threads", "2"], rest),
        _ => (&["--quiet", "--threads", "2"], args),
    };
    cmd.current_dir(workspace()).args(common).args(args).output().unwrap()
}

/// `cyclegan-calib` on the demo generator and the fixture images at `size`, writing `out` and the
/// report folder `report`, with `extra` flags.
fn calib_demo(size: &str, out: &Path, report: &Path, extra: &[&str]) -> Output {
    let (model, images) = (demo_model(), fixtures());
    let base = [
        "--model",
        model.to_str().unwrap(),
        "--images",
        images.to_str().unwrap(),
        "--size",
        size,
        "--out",
        out.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ];
    calib(&[&base[..], extra].concat())
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn python_check(fp32: &Path, int8: &Path, report: &Path) -> serde_json::Value {
    let out = Command::new(workspace().join(".venv/bin/python"))
        .arg(workspace().join("calibration/python/check_qdq.py"))
        .args([fp32, int8, report])
        .output()
        .expect("run ./scripts/install.sh for .venv");
    assert!(out.status.success(), "check_qdq.py: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The distinct activations the report's `layers` quantize: their inputs and the residual stream
/// their Pads read.
fn quantized_tensors<'a>(layers: impl Iterator<Item = &'a serde_json::Value>) -> Vec<&'a str> {
    let mut tensors: Vec<&str> =
        layers.flat_map(|l| [l["input"].as_str(), l.get("pad_input").and_then(|p| p.as_str())]).flatten().collect();
    tensors.sort();
    tensors.dedup();
    tensors
}

fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap()
}

#[test]
fn qdq_model_is_valid_onnx_and_onnxruntime_measures_what_the_report_says() {
    let dir = tempfile::tempdir().unwrap();
    let (int8, cache, rep) = (dir.path().join("G.int8.onnx"), dir.path().join("G.calib"), dir.path().join("report"));
    // Emulated (scripts/cross-test.sh), where ONNX Runtime is ~200x slower, at a quarter of the pixels.
    let emulated = std::env::var_os("CYCLEGAN_EMULATED").is_some();
    let size = if emulated { "48" } else { "96" };
    // Emulated, without the refinement's 80-odd extra runs: what runs on arm64 is the same.
    let refine: &[&str] = if emulated { &["--no-refine"] } else { &[] };
    let out = calib_demo(size, &int8, &rep, &[&["--trt-cache", cache.to_str().unwrap()], refine].concat());
    assert!(out.status.success(), "{}", text(&out));
    let ours = report(&rep);
    let theirs = python_check(&demo_model(), &int8, &rep);
    let (a, b) = (ours["int8"]["psnr_db"].as_f64().unwrap(), theirs["psnr_db"].as_f64().unwrap());
    // Emulated, the report is arm64 ONNX Runtime's and the peer x86_64's, whose INT8 kernels
    // round differently (0.12 dB apart at 48 pixels).
    let tolerance = if emulated { 0.3 } else { 0.1 };
    assert!((a - b).abs() < tolerance, "report says {a} dB, ONNX Runtime measures {b} dB");
    assert!(a > 15.0 && a < 60.0, "{a}");
    // Every layer quantized: one Q/DQ pair per distinct activation (the Pads' residual stream
    // included), one DQ per weight.
    let layers = ours["layers"].as_array().unwrap();
    let convs = layers.iter().filter(|l| l["op"] != "Add").count() as u64;
    let inputs = quantized_tensors(layers.iter());
    assert_eq!(theirs["quantize_nodes"].as_u64().unwrap(), inputs.len() as u64);
    assert_eq!(theirs["dequantize_nodes"].as_u64().unwrap(), inputs.len() as u64 + convs);
    // FP16 is near-lossless, INT8 is not free.
    assert!(ours["fp16"]["psnr_db"].as_f64().unwrap() > a);
    // Its FP16 form (what TensorRT 11 builds: scales and unquantized layers in float16) is valid
    // ONNX with the same Q/DQ nodes, and ONNX Runtime measures it as good within 0.5 dB.
    let half = dir.path().join("G.int8.fp16.onnx");
    let model = cyclegan_onnx::io::read_model(&int8).unwrap();
    cyclegan_onnx::io::write_model(&half, &cyclegan_onnx::convert::to_fp16(&model).unwrap()).unwrap();
    let theirs_fp16 = python_check(&demo_model(), &half, &rep);
    let c = theirs_fp16["psnr_db"].as_f64().unwrap();
    assert!((a - c).abs() < 0.5, "FP32 Q/DQ {a} dB, its FP16 form {c} dB");
    assert_eq!(theirs_fp16["quantize_nodes"], theirs["quantize_nodes"]);

    // The cache: TensorRT 10.3's header, then each activation's scale as big-endian float32 hex.
    let text = std::fs::read_to_string(&cache).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("TRT-100300-EntropyCalibration2"));
    let scales: std::collections::HashMap<&str, f32> = lines
        .map(|l| {
            let (name, hex) = l.split_once(": ").unwrap();
            assert_eq!(hex.len(), 8, "{l}");
            (name, f32::from_bits(u32::from_str_radix(hex, 16).unwrap()))
        })
        .collect();
    assert!(scales.contains_key(INPUT) && scales.contains_key(OUTPUT));
    for l in layers {
        let name = l["input"].as_str().unwrap();
        assert_eq!(scales[name], l["scale"].as_f64().unwrap() as f32, "{name}");
    }
}

#[test]
fn mse_refined_and_with_float_residual_is_valid_onnx_and_beats_min_max_and_entropy() {
    let dir = tempfile::tempdir().unwrap();
    let mut psnr = std::collections::BTreeMap::new();
    for (name, flags) in [
        ("trt-entropy", &["--method", "trt-entropy"][..]),
        ("minmax", &["--method", "minmax"]),
        ("mse", &["--method", "mse"]),
        ("mse-unrefined", &["--method", "mse", "--no-refine"]),
        ("mse-float-residual", &["--method", "mse", "--float-residual"]),
    ] {
        let (int8, rep) = (dir.path().join(format!("{name}.onnx")), dir.path().join(name));
        let out = calib_demo("64", &int8, &rep, flags);
        assert!(out.status.success(), "{name}: {}", text(&out));
        let r = report(&rep);
        psnr.insert(name, r["int8_all"]["psnr_db"].as_f64().unwrap());
        let t = &r["timings"];
        for step in ["load_s", "observe_s", "scales_s", "evaluate_s", "rewrite_s"] {
            assert!(t[step].as_f64().unwrap() > 0.0, "{name}: {step} {t}");
        }
        assert_eq!(t["refine_s"].as_f64().unwrap() > 0.0, name != "mse-unrefined", "{name}: {t}");
        assert!(t["total_s"].as_f64().unwrap() >= t["observe_s"].as_f64().unwrap() + t["evaluate_s"].as_f64().unwrap());
        if name != "mse-float-residual" {
            continue;
        }
        // onnx.checker passes, ONNX Runtime runs it and measures what we do.
        let theirs = python_check(&demo_model(), &int8, &rep);
        let ours = r["int8"]["psnr_db"].as_f64().unwrap();
        assert!((ours - theirs["psnr_db"].as_f64().unwrap()).abs() < 0.1, "{ours} vs {theirs}");
        // The Adds stay float; every convolution keeps its Q/DQ: all conv MACs in INT8.
        assert_eq!(r["float_residual"], true);
        assert_eq!(r["method"], "mse");
        assert_eq!(r["int8_mac_share"].as_f64().unwrap(), 1.0);
        let layers = r["layers"].as_array().unwrap();
        let adds: Vec<&str> = layers.iter().filter(|l| l["op"] == "Add").map(|l| l["name"].as_str().unwrap()).collect();
        assert!(!adds.is_empty());
        assert_eq!(r["kept_fp"], serde_json::json!(adds));
        let graph = cyclegan_onnx::io::read_model(&int8).unwrap().graph.unwrap();
        for n in graph.node.iter().filter(|n| n.op_type == "Add") {
            assert!(!n.input.iter().any(|i| i.contains("DequantizeLinear")), "{}: {:?}", n.name, n.input);
        }
        let convs: Vec<_> = layers.iter().filter(|l| l["op"] != "Add").collect();
        let inputs = quantized_tensors(convs.iter().copied());
        assert_eq!(theirs["quantize_nodes"].as_u64().unwrap(), inputs.len() as u64);
        assert_eq!(theirs["dequantize_nodes"].as_u64().unwrap(), (inputs.len() + convs.len()) as u64);
        // SQNR from the histogram is a sane figure for every quantized activation.
        assert!(layers.iter().all(|l| (10.0..=100.0).contains(&l["sqnr_db"].as_f64().unwrap())), "{layers:?}");
    }
    // The smallest-error thresholds measure better than min-max and far better than TensorRT's
    // entropy, which clips the instance-normalized activations; the Adds in float add to that.
    assert!(psnr["mse"] > psnr["minmax"], "{psnr:?}");
    assert!(psnr["mse"] >= psnr["trt-entropy"] + 10.0, "{psnr:?}");
    assert!(psnr["mse-float-residual"] > psnr["mse"], "{psnr:?}");
    // Refining the thresholds against the output on calibration images pays on held-out ones.
    assert!(psnr["mse"] > psnr["mse-unrefined"], "{psnr:?}");
}

#[test]
fn keep_fp_and_target_psnr_leave_layers_in_float() {
    let dir = tempfile::tempdir().unwrap();
    let int8 = dir.path().join("keep.onnx");
    let rep = dir.path().join("report");
    let out = calib_demo("64", &int8, &rep, &["--method", "percentile", "--keep-fp", "model.1.Conv,model.23.Conv"]);
    assert!(out.status.success(), "{}", text(&out));
    let r = report(&rep);
    assert_eq!(r["kept_fp"], serde_json::json!(["model.1.Conv", "model.23.Conv"]));
    let model = cyclegan_onnx::io::read_model(&int8).unwrap();
    let graph = model.graph.unwrap();
    for kept in ["model.1.Conv", "model.23.Conv"] {
        let node = graph.node.iter().find(|n| n.name == kept).unwrap();
        assert!(!node.input.iter().any(|i| i.contains("DequantizeLinear")), "{kept}: {:?}", node.input);
    }
    let quantized = graph.node.iter().find(|n| n.name == "model.4.Conv").unwrap();
    assert!(
        quantized.input.iter().all(|i| i.contains("DequantizeLinear") || i.ends_with(".bias")),
        "{:?}",
        quantized.input
    );

    // A target above what all-INT8 reaches keeps the most damaging layers until it is met.
    let all = r["int8_all"]["psnr_db"].as_f64().unwrap();
    let target = format!("{:.1}", all + 3.0);
    let out = calib_demo("64", &int8, &rep, &["--target-psnr", &target]);
    assert!(out.status.success(), "{}", text(&out));
    let r = report(&rep);
    let kept = r["kept_fp"].as_array().unwrap();
    assert!(!kept.is_empty());
    assert!(
        r["int8"]["psnr_db"].as_f64().unwrap() >= target.parse::<f64>().unwrap()
            || kept.len() == r["layers"].as_array().unwrap().len()
    );
    // The kept layers are the ones that hurt most when quantized alone.
    let layers = r["layers"].as_array().unwrap();
    let worst_kept = layers
        .iter()
        .filter(|l| l["kept_fp"] == true)
        .map(|l| l["alone_psnr_db"].as_f64().unwrap())
        .fold(f64::MIN, f64::max);
    let best_quantized = layers
        .iter()
        .filter(|l| l["kept_fp"] == false)
        .map(|l| l["alone_psnr_db"].as_f64().unwrap())
        .fold(f64::MAX, f64::min);
    assert!(worst_kept <= best_quantized, "kept {worst_kept} dB layers but quantized a {best_quantized} dB one");

    // The search reports each step; the INT8 share of MACs is what the kept convolutions leave,
    // counted on the model as `cyclegan_onnx::cost` counts it.
    let search = r["search"].as_array().unwrap();
    let mut steps: Vec<&serde_json::Value> = search.iter().map(|s| &s["kept_fp"]).collect();
    steps.sort_by_key(|v| v.as_str().unwrap());
    assert_eq!(steps, kept.iter().collect::<Vec<_>>());
    let cost = cyclegan_onnx::cost::cost(&cyclegan_onnx::io::read_model(&demo_model()).unwrap(), 64, 64).unwrap();
    let conv_macs: u64 = cost.nodes.iter().filter(|n| n.op.starts_with("Conv")).map(|n| n.macs).sum();
    assert_eq!(r["conv_macs"].as_u64().unwrap(), conv_macs);
    let float_macs: u64 = cost.nodes.iter().filter(|n| kept.contains(&serde_json::json!(n.name))).map(|n| n.macs).sum();
    let share = r["int8_mac_share"].as_f64().unwrap();
    assert!((share - (conv_macs - float_macs) as f64 / conv_macs as f64).abs() < 1e-9, "{share}");
    assert_eq!(search.last().unwrap()["int8_mac_share"].as_f64().unwrap(), share);
    let shares: Vec<f64> = search.iter().map(|s| s["int8_mac_share"].as_f64().unwrap()).collect();
    assert!(shares.windows(2).all(|w| w[1] <= w[0]), "{shares:?}");
    assert!(r["timings"]["sensitivity_s"].as_f64().unwrap() > 0.0);
    let table = std::fs::read_to_string(rep.join("report.md")).unwrap();
    assert!(table.contains("INT8 share of conv MACs") && table.contains("sensitivity"), "{table}");
}

#[test]
fn bad_input_is_refused_with_a_message_naming_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let out_model = dir.path().join("out.onnx");
    let out = out_model.to_str().unwrap();
    let model = demo_model();
    let model = model.to_str().unwrap();
    let images = fixtures();
    let images = images.to_str().unwrap();

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let tiny = dir.path().join("tiny");
    std::fs::create_dir(&tiny).unwrap();
    for name in ["00000.png", "00001.png", "00002.png"] {
        std::fs::copy(fixtures().join(name), tiny.join(name)).unwrap();
    }
    std::fs::write(tiny.join("notes.txt"), "not an image").unwrap();
    let broken = dir.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, broken.join(p.file_name().unwrap())).unwrap();
    }
    std::fs::write(broken.join("00003.png"), "this is not a png").unwrap();

    // Not one of our generators: metadata stripped; and an already quantized one.
    let mut proto = cyclegan_onnx::io::read_model(Path::new(model)).unwrap();
    proto.metadata_props.clear();
    let bare = dir.path().join("bare.onnx");
    cyclegan_onnx::io::write_model(&bare, &proto).unwrap();
    let mut odd = cyclegan_onnx::io::read_model(Path::new(model)).unwrap();
    let relu = odd.graph.as_mut().unwrap().node.iter_mut().find(|n| n.op_type == "Relu").unwrap();
    relu.op_type = "Sigmoid".into();
    let sigmoid = dir.path().join("sigmoid.onnx");
    cyclegan_onnx::io::write_model(&sigmoid, &odd).unwrap();
    // A generator without residual blocks: every Add bypassed by its block's branch.
    let mut plain = cyclegan_onnx::io::read_model(Path::new(model)).unwrap();
    let g = plain.graph.as_mut().unwrap();
    let bypass: Vec<(String, String)> =
        g.node.iter().filter(|n| n.op_type == "Add").map(|n| (n.output[0].clone(), n.input[1].clone())).collect();
    g.node.retain(|n| n.op_type != "Add");
    for n in &mut g.node {
        for i in &mut n.input {
            if let Some((_, by)) = bypass.iter().find(|(out, _)| out == i) {
                *i = by.clone();
            }
        }
    }
    let no_residual = dir.path().join("no_residual.onnx");
    cyclegan_onnx::io::write_model(&no_residual, &plain).unwrap();
    let quantized = dir.path().join("q.onnx");
    let first = calib(&["--model", model, "--images", images, "--size", "32", "--out", quantized.to_str().unwrap()]);
    assert!(first.status.success(), "{}", text(&first));

    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["--model", "/no/such/G.onnx", "--images", images], vec!["/no/such/G.onnx"]),
        (vec!["--model", bare.to_str().unwrap(), "--images", images], vec!["cyclegan.", "bare.onnx"]),
        (vec!["--model", quantized.to_str().unwrap(), "--images", images], vec!["already quantized"]),
        (
            vec!["--model", sigmoid.to_str().unwrap(), "--images", images],
            vec!["sigmoid.onnx", "is a Sigmoid, which is not part of a CycleGAN generator"],
        ),
        (vec!["--model", model, "--images", empty.to_str().unwrap()], vec!["found 0 images", "at least 12"]),
        (
            vec!["--model", model, "--images", tiny.to_str().unwrap()],
            vec!["found 3 images", "1 other files (notes.txt)"],
        ),
        (
            vec!["--model", model, "--images", broken.to_str().unwrap(), "--size", "32"],
            vec!["00003.png", "not a readable image"],
        ),
        (
            vec!["--model", model, "--images", images, "--keep-fp", "model.99.Conv"],
            vec!["model.99.Conv", "model.1.Conv, model.4.Conv"],
        ),
        (vec!["--model", model, "--images", images, "--method", "median"], vec!["--method median", "mse"]),
        (vec!["--model", model, "--images", images, "--method", "mse:2"], vec!["--method mse:2"]),
        (
            vec!["--model", no_residual.to_str().unwrap(), "--images", images, "--float-residual"],
            vec!["--float-residual", "no_residual.onnx", "no residual Add"],
        ),
        (vec!["--model", model, "--images", images, "--target-psnr=-3"], vec!["--target-psnr"]),
    ];
    for (args, expect) in cases {
        let o = calib(&[args.as_slice(), &["--out", out]].concat());
        let t = text(&o);
        assert!(!o.status.success(), "{args:?} succeeded");
        for e in expect {
            assert!(t.contains(e), "{args:?}: expected {e:?} in {t}");
        }
        assert!(!out_model.exists(), "{args:?} wrote {out}");
    }
}

#[test]
fn evaluate_measures_int8_models_as_the_calibration_report_does() {
    let dir = tempfile::tempdir().unwrap();
    let (mse, keep) = (dir.path().join("mse.onnx"), dir.path().join("keep.onnx"));
    let (rep_mse, rep_keep) = (dir.path().join("mse"), dir.path().join("keep"));
    let out = calib_demo("64", &mse, &rep_mse, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let out = calib_demo("64", &keep, &rep_keep, &["--keep-fp", "model.1.Conv,model.23.Conv"]);
    assert!(out.status.success(), "{}", text(&out));
    // The held-out images of the calibration, in a folder of their own.
    let held = dir.path().join("held-out");
    std::fs::create_dir(&held).unwrap();
    for p in report(&rep_mse)["held_out_images"].as_array().unwrap() {
        let p = workspace().join(p.as_str().unwrap());
        std::fs::copy(&p, held.join(p.file_name().unwrap())).unwrap();
    }
    let models = format!("{},{}", mse.display(), keep.display());
    let (demo, held_dir) = (demo_model(), held.to_str().unwrap().to_string());
    let out = calib(&[
        "evaluate",
        "--model",
        demo.to_str().unwrap(),
        "--images",
        &held_dir,
        "--size",
        "64",
        "--int8",
        &models,
        "--latency-runs",
        "1",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let row = |model: &Path| -> Vec<String> {
        let line = table.lines().find(|l| l.starts_with(&format!("| {} |", model.display()))).unwrap_or_else(|| {
            panic!("no row for {} in\n{table}", model.display());
        });
        line.split('|').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect()
    };
    for (model, rep) in [(&mse, &rep_mse), (&keep, &rep_keep)] {
        let r = report(rep);
        let cells = row(model);
        let layers = r["layers"].as_array().unwrap().len();
        assert_eq!(cells[1], "mse");
        // The placement read back from the file: Q/DQ pairs, convolutions with INT8 input and
        // weights, Adds with an INT8 input.
        let all = r["layers"].as_array().unwrap();
        let kept = |l: &&serde_json::Value| l["kept_fp"] == true;
        let int8: Vec<_> = all.iter().filter(|l| !kept(l)).collect();
        assert_eq!(cells[2], quantized_tensors(int8.iter().copied()).len().to_string());
        let convs = all.iter().filter(|l| l["op"] != "Add").count();
        let adds = layers - convs;
        let int8_convs = int8.iter().filter(|l| l["op"] != "Add").count();
        assert_eq!(cells[3], format!("{int8_convs} of {convs}"));
        assert_eq!(cells[4], format!("{} of {adds}", int8.len() - int8_convs));
        assert_eq!(cells[5], format!("{} of {layers}", r["kept_fp"].as_array().unwrap().len()));
        assert_eq!(cells[6], format!("{:.1} %", 100.0 * r["int8_mac_share"].as_f64().unwrap()));
        let psnr: f64 = cells[7].parse().unwrap();
        assert!((psnr - r["int8"]["psnr_db"].as_f64().unwrap()).abs() < 0.01, "{psnr} vs the report's {}", r["int8"]);
        assert!(cells[9].parse::<f64>().unwrap() > 0.0, "a latency");
    }
    let fp32 = row(&demo);
    assert_eq!(
        (fp32[1].as_str(), fp32[2].as_str(), fp32[6].as_str(), fp32[7].as_str()),
        ("fp32", "0", "0.0 %", "100.00"),
        "{table}"
    );

    // An FP32 model is not an INT8 one.
    let out = calib(&[
        "evaluate",
        "--model",
        demo.to_str().unwrap(),
        "--images",
        &held_dir,
        "--int8",
        demo.to_str().unwrap(),
    ]);
    assert!(!out.status.success() && text(&out).contains("not a Q/DQ one"), "{}", text(&out));
}
