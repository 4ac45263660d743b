//! `cyclegan-edge run` as a user runs it: files that play back with the right frames, Ctrl-C
//! that still leaves a playable file, frame drops on live inputs, and bad input that fails fast
//! with a message naming the cause and leaves nothing half-written.
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cyclegan_edge::pipeline::decode_file;

mod common;

fn edge() -> Command {
    let mut cmd = common::own_binary(env!("CARGO_BIN_EXE_cyclegan-edge"));
    // From the checkout's root, where scripts/install.sh put ONNX Runtime (.venv).
    cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    cmd
}

fn run(args: &[&str]) -> Output {
    edge().arg("run").args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn path_arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Only `keep` (if any) is left in `dir`: no partial output.
fn assert_only(dir: &Path, keep: &[&str]) {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, keep.iter().map(|s| s.to_string()).collect::<Vec<_>>());
}

#[test]
fn test_pattern_to_mp4_then_that_file_as_input() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.mp4");
    let out = run(&[
        "--input",
        "test://ball",
        "--width",
        "160",
        "--height",
        "120",
        "--num-frames",
        "30",
        "--threads",
        "2",
        "--output",
        path_arg(&first),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let video = decode_file(&first).unwrap();
    assert_eq!((video.frames, video.width, video.height), (30, 160, 120));
    assert!(text(&out).contains("30 frames"), "{}", text(&out));
    // The default encoder is `auto`: where the Jetson's is missing, x264enc does it and says so.
    if gstreamer::ElementFactory::find("nvv4l2h264enc").is_none() {
        assert!(text(&out).contains("note: no `nvvidconv` here (Jetson hardware encoding)"), "{}", text(&out));
    }
    assert_only(dir.path(), &["first.mp4"]);

    // A file input, cut after 12 frames, with a config file and a flag overriding it; one frame
    // held in flight still comes out, temporally smoothed.
    let config = dir.path().join("edge.toml");
    std::fs::write(
        &config,
        "[inference]\ninference_size = \"96\"\nstrength = 0.5\ntemporal_smoothing = 0.5\nframes_in_flight = 2\n\
         [input]\nnum_frames = 50\n",
    )
    .unwrap();
    let second = dir.path().join("second.mkv");
    let out = edge()
        .args(["run", "--config", path_arg(&config), "--input", path_arg(&first), "--num-frames", "12"])
        .args(["--output", path_arg(&second)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let video = decode_file(&second).unwrap();
    assert_eq!((video.frames, video.width, video.height), (12, 160, 120));
}

#[test]
fn ctrl_c_mid_recording_leaves_a_playable_file_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.mp4");
    let mut child = edge()
        .args(["run", "--input", "test://", "--live", "true", "--width", "160", "--height", "120"])
        .args(["--framerate", "15", "--output", path_arg(&path)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let started = Instant::now();
    let out = loop {
        if child.try_wait().unwrap().is_some() {
            break child.wait_with_output().unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no exit 30 s after Ctrl-C");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("stopped by Ctrl-C"), "{}", text(&out));
    let video = decode_file(&path).unwrap();
    assert!(video.frames >= 10, "{video:?}");
    assert!(text(&out).contains(&format!("{} frames in", video.frames)), "{}\n{video:?}", text(&out));
    assert_only(dir.path(), &["live.mp4"]);
}

#[test]
fn a_live_input_faster_than_the_model_drops_frames_instead_of_stalling() {
    // 600 frames/s for half a second: far more than a CPU translates at 320x240.
    let out = run(&[
        "--input",
        "test://",
        "--live",
        "true",
        "--framerate",
        "600",
        "--width",
        "320",
        "--height",
        "240",
        "--num-frames",
        "300",
        "--inference-size",
        "240",
        "--threads",
        "1",
        "--output",
        "null://",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    let field = |after: &str| -> u64 {
        let start = t.rfind(after).unwrap_or_else(|| panic!("no {after:?} in {t}")) + after.len();
        t[start..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
    };
    let dropped = field("dropped ");
    assert!(dropped > 50, "{t}");
    let translated: u64 = t.split(" frames in").next().unwrap().rsplit(' ').next().unwrap().parse().unwrap();
    assert!(translated + dropped <= 300 && translated > 0, "{t}");
}

#[test]
fn bad_input_fails_fast_names_the_cause_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("out.mp4");
    let output = path_arg(&out_path).to_string();
    let corrupt = dir.path().join("corrupt.onnx");
    std::fs::write(&corrupt, b"\x12\x05not a model").unwrap();
    let engine = dir.path().join("G.engine");
    std::fs::write(&engine, b"a serialized engine").unwrap();
    let bad_config = dir.path().join("bad.toml");
    std::fs::write(&bad_config, "[input]\nframe_rate = 30\n").unwrap();
    // A server that accepts RTSP connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("rtsp://127.0.0.1:{}/stream", silent.local_addr().unwrap().port());
    let silent_http = silent_url.replace("rtsp://", "http://");
    let refused_url = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("rtsp://127.0.0.1:{}/stream", l.local_addr().unwrap().port())
    };
    // The exit status says whether waiting for the input may help (a service restarts) or the
    // configuration is wrong (it does not): `cyclegan-edge run --help`.
    let (config, unavailable) = (78, 75);
    let cases: Vec<(Vec<&str>, &str, i32)> = vec![
        (vec!["--model", "/no/such/G.onnx"], "/no/such/G.onnx", config),
        (vec!["--model", path_arg(&corrupt)], "corrupt.onnx", config),
        (vec!["--input", "/no/such/clip.mp4"], "/no/such/clip.mp4", config),
        (vec!["--input", "v4l2:///dev/video99"], "/dev/video99", unavailable),
        (vec!["--input", &refused_url, "--timeout-s", "3"], "Failed to connect", unavailable),
        (vec!["--input", &silent_url, "--timeout-s", "2"], "Timeout", unavailable),
        (vec!["--input", &silent_http, "--timeout-s", "2"], "no frame within 2 s", unavailable),
        (vec!["--input", "test://nosuchpattern"], "nosuchpattern", config),
        (vec!["--inference-size", "33x10"], "multiples of 4", config),
        (vec!["--strength", "3"], "--strength", config),
        (vec!["--temporal-smoothing", "1.5"], "--temporal-smoothing 1.5", config),
        (vec!["--temporal-smoothing", "NaN"], "between 0 and 1", config),
        (vec!["--backend", "tensorrt"], "tensorrt", config),
        (vec!["--config", path_arg(&bad_config)], "frame_rate", config),
        (vec!["--config", "/no/such/camera.toml"], "/no/such/camera.toml", config),
        (vec!["--model", path_arg(&engine)], "TensorRT engine, not an ONNX", config),
    ];
    // NVIDIA's elements, asked for where they are missing (any machine but a Jetson).
    let jetson_cases: Vec<(Vec<&str>, &str, i32)> = vec![
        (vec!["--input", "csi://0"], "nvarguscamerasrc", config),
        (vec!["--encoder", "nvv4l2h264enc"], "nvidia-l4t-gstreamer", config),
    ];
    gstreamer::init().unwrap();
    let cases = if gstreamer::ElementFactory::find("nvvidconv").is_none() {
        cases.into_iter().chain(jetson_cases).collect()
    } else {
        cases
    };
    for (args, expect, status) in cases {
        let started = Instant::now();
        let out = edge().args(["run", "--num-frames", "5", "--output", &output]).args(&args).output().unwrap();
        let t = text(&out);
        assert_eq!(out.status.code(), Some(status), "{args:?}: {t}");
        assert!(t.contains(expect), "{args:?}: expected {expect:?} in: {t}");
        assert!(started.elapsed() < Duration::from_secs(30), "{args:?} took {:?}", started.elapsed());
        assert_only(dir.path(), &["G.engine", "bad.toml", "corrupt.onnx"]);
    }
    drop(silent);
    let out = run(&["--output", "/no/such/dir/out.mp4"]);
    assert!(out.status.code() == Some(config) && text(&out).contains("/no/such/dir"), "{}", text(&out));
    let out = run(&["--output", path_arg(&dir.path().join("out.avi"))]);
    assert!(out.status.code() == Some(config) && text(&out).contains(".mp4"), "{}", text(&out));
}

#[test]
fn bench_times_fp32_fp16_and_int8_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let int8 = dir.path().join("demo.int8.onnx");
    let demo = common::workspace().join("models/summer2winter-demo/generator.onnx");
    let calibration = cyclegan_calibration::calibrate::Options::new(
        demo.clone(),
        common::workspace().join("tests/fixtures/summer96"),
        int8.clone(),
    );
    cyclegan_calibration::calibrate::calibrate(&cyclegan_calibration::calibrate::Options {
        num: 16,
        size: cyclegan_edge::preprocess::InferenceSize::Short(64),
        threads: 2,
        quiet: true,
        ..calibration
    })
    .unwrap();
    let bench = |int8: &Path| {
        let args = ["bench", "int8", "--size", "64x64", "--rounds", "1", "--iters", "3", "--warmup", "1"];
        edge().args(args).args(["--int8", path_arg(int8)]).output().unwrap()
    };
    let out = bench(&int8);
    assert!(out.status.success(), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let fp32_ms = |line: &str| -> (f64, f64, f64) {
        let cells: Vec<&str> = line.split('|').map(str::trim).filter(|c| !c.is_empty()).collect();
        (cells[1].parse().unwrap(), cells[3].parse().unwrap(), cells[4].parse().unwrap())
    };
    for name in ["FP16 graph", "INT8 (Q/DQ)"] {
        let line = table.lines().find(|l| l.starts_with(&format!("| {name} ms/frame 64x64"))).unwrap_or_else(|| {
            panic!("no {name} row in\n{table}");
        });
        let (ms, fp32, ratio) = fp32_ms(line);
        assert!(ms > 0.0 && fp32 > 0.0, "{line}");
        assert!(
            (ratio - fp32 / ms).abs() <= 0.01 + 0.01 * ratio,
            "one round: the ratio is FP32's time over its own: {line}"
        );
    }

    // The FP32 model where the INT8 one belongs.
    let out = bench(&demo);
    assert!(!out.status.success() && text(&out).contains("--int8") && text(&out).contains("fp32"), "{}", text(&out));
}

/// Each key of each section of a pipeline configuration is a flag of `run`, with help, and is in
/// docs/edge.md's table of keys.
#[test]
fn every_config_key_is_a_flag_and_documented() {
    let mut config = cyclegan_edge::config::EdgeConfig::default();
    // Unset optional keys are left out of the TOML: set them so that they are checked too.
    config.inference.model = Some("g.onnx".into());
    config.inference.engine = Some("g.engine".into());
    config.inference.engine_cache = Some("engines".into());
    let sections = toml::Table::try_from(&config).unwrap();
    let out = edge().args(["run", "--help"]).output().unwrap();
    let help = text(&out);
    assert!(out.status.success(), "{help}");
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/edge.md")).unwrap();
    let table: String =
        docs.lines().skip_while(|l| !l.contains("**`[inference]`**")).take_while(|l| l.starts_with('|')).collect();
    for (section, keys) in &sections {
        // `[[stream]]` is an array of tables: `--stream INPUT OUTPUT`.
        if section == "stream" {
            assert!(help.contains("--stream <INPUT> <OUTPUT>"), "{help}");
            assert!(table.contains("**`[[stream]]`**"), "[[stream]] is not in docs/edge.md's table of keys");
            continue;
        }
        let keys = keys.as_table().unwrap();
        assert!(!keys.is_empty(), "[{section}]");
        for key in keys.keys() {
            let flag = format!("--{} <", key.replace('_', "-"));
            let mut lines = help.lines().skip_while(|l| !l.trim_start().starts_with(&flag));
            assert!(lines.next().is_some(), "[{section}] {key}: `run --help` has no {flag}");
            assert!(lines.next().is_some_and(|l| !l.trim().is_empty()), "[{section}] {key}: {flag} has no help");
            assert!(table.contains(&format!("`{key}`")), "[{section}] {key} is not in docs/edge.md's table of keys");
        }
    }
}
