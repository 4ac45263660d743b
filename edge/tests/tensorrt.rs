//! The TensorRT backend where the tests run (no GPU, no full TensorRT): the loader against the
//! real `libnvinfer_dispatch.so.11` of PyPI's tensorrt-dispatch-cu13-libs (its version query and
//! the "runtime only" refusal), the shim compiled against real TensorRT headers, and the CLI's
//! `build`, `doctor` and `run --backend tensorrt|auto` answering clearly where TensorRT is missing.
use std::path::PathBuf;
use std::process::{Command, Output};

use cyclegan_edge::backend::cuda::device;
use cyclegan_edge::backend::tensorrt::{self, Severity, TensorRt, Version};

mod common;

/// The dispatch runtime scripts/install.sh puts in .venv (requirements.txt).
fn dispatch_library() -> PathBuf {
    let lib = common::workspace().join(".venv/lib");
    let found = std::fs::read_dir(&lib).ok().into_iter().flatten().flatten().find_map(|python| {
        let path = python.path().join("site-packages/tensorrt_dispatch_libs/libnvinfer_dispatch.so.11");
        path.is_file().then_some(path)
    });
    found.unwrap_or_else(|| panic!("no libnvinfer_dispatch.so.11 under {}: run ./scripts/install.sh", lib.display()))
}

fn edge(args: &[&str]) -> Output {
    let mut cmd: Command = common::own_binary(env!("CARGO_BIN_EXE_cyclegan-edge"));
    cmd.current_dir(common::workspace()).args(args).output().unwrap()
}

/// Whether this machine can build and run engines (a full TensorRT and a GPU): the tests below
/// check the working path there and the clear refusal everywhere else.
fn can_build_engines() -> bool {
    device::driver_present() && TensorRt::open(None, Severity::Warning).is_ok()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn the_shim_was_compiled_against_tensorrt_headers() {
    let v = tensorrt::header_version().unwrap_or_else(|| panic!("no TensorRT headers: {}", tensorrt::HEADERS));
    assert!(v.major >= 10, "headers {v}");
    let out = edge(&["--version"]);
    assert!(text(&out).contains(&format!("TensorRT headers: TensorRT {v} (")), "{}", text(&out));
}

#[test]
#[cfg_attr(not(target_arch = "x86_64"), ignore = "the venv's TensorRT dispatch wheel is x86_64")]
fn the_dispatch_runtime_reports_its_version_and_cannot_build() {
    let path = dispatch_library();
    let probe = tensorrt::probe(&path).unwrap();
    assert_eq!(probe.version, Version { major: 11, minor: 4, patch: 0 });
    assert!(probe.can_run && !probe.can_build, "{probe:?}");
    // Given explicitly, by file or by folder, it is refused with its version and the reason.
    for given in [path.clone(), path.parent().unwrap().to_path_buf()] {
        let err = TensorRt::open(Some(&given), Severity::Warning).err().expect("a refusal").to_string();
        assert!(err.contains("TensorRT not found"), "{err}");
        assert!(
            err.contains("libnvinfer_dispatch.so.11 (TensorRT 11.4.0, runtime only: cannot build engines)"),
            "{err}"
        );
        assert!(err.contains("--tensorrt-lib"), "{err}");
    }
}

#[test]
#[cfg_attr(not(target_arch = "x86_64"), ignore = "the venv's TensorRT dispatch wheel is x86_64")]
fn build_names_what_is_missing_and_bad_flags() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("G.engine");
    let out = out.to_str().unwrap();
    let onnx = "models/summer2winter-demo/generator.onnx";
    let cases: [(&[&str], &str); 6] = [
        (&["--onnx", onnx, "--out", out], "give the input size: --size WxH, or --profile MIN:OPT:MAX"),
        (&["--onnx", onnx, "--out", out, "--size", "65x64"], "--size: shape \"65x64\""),
        (&["--onnx", onnx, "--out", out, "--profile", "64x64:32x32:128x128"], "MIN <= OPT <= MAX"),
        (&["--onnx", onnx, "--out", "G.onnx", "--size", "64x64"], "--out G.onnx: name the engine file"),
        (&["--onnx", "missing.onnx", "--out", out, "--size", "64x64"], "--onnx missing.onnx"),
        (
            &["--onnx", onnx, "--out", out, "--size", "64x64", "--tensorrt-lib", "/nonexistent/libnvinfer.so.10"],
            "TensorRT library /nonexistent/libnvinfer.so.10: no such file",
        ),
    ];
    for (args, expected) in cases {
        let result = edge(&[&["build"], args].concat());
        let message = text(&result);
        assert!(!result.status.success(), "{args:?} succeeded: {message}");
        assert!(message.contains(expected), "{args:?}: expected {expected:?} in {message}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing written");
    // Valid flags: an engine where TensorRT and a GPU are, else what stops it, naming what was found.
    let valid = edge(&["build", "--onnx", onnx, "--out", out, "--size", "64x64"]);
    let message = text(&valid);
    if can_build_engines() {
        assert!(valid.status.success(), "{message}");
        assert!(std::path::Path::new(out).is_file(), "no engine: {message}");
    } else {
        assert!(!valid.status.success(), "{message}");
        assert!(message.contains("runtime only: cannot build engines"), "{message}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing written");
    }
}

#[test]
#[cfg_attr(not(target_arch = "x86_64"), ignore = "the venv's TensorRT dispatch wheel is x86_64")]
fn run_with_tensorrt_fails_clearly_and_auto_falls_back_to_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("out.mkv");
    let video = video.to_str().unwrap();
    let common = ["run", "--input", "test://", "--num-frames", "3", "--width", "64", "--height", "64"];
    let forced = edge(&[&common[..], &["--backend", "tensorrt", "--output", video]].concat());
    let message = text(&forced);
    if can_build_engines() {
        assert!(forced.status.success() && message.contains("plays back: 3 frames"), "{message}");
        std::fs::remove_file(video).unwrap();
    } else {
        assert!(!forced.status.success(), "{message}");
        assert!(message.contains("TensorRT not found") || message.contains("CUDA driver"), "{message}");
        assert!(!std::path::Path::new(video).exists());
    }
    let bad = edge(&[&common[..], &["--precision", "bf16", "--output", video]].concat());
    assert!(!bad.status.success() && text(&bad).contains("possible values: fp32, fp16, int8"), "{}", text(&bad));
    let auto = edge(&[&common[..], &["--backend", "auto", "--output", video]].concat());
    let message = text(&auto);
    assert!(auto.status.success(), "{message}");
    assert!(message.contains("plays back: 3 frames"), "{message}");
    // With no CUDA driver there is nothing to explain; with one, the fallback says why.
    assert_eq!(message.contains("backend auto: using the CPU"), device::driver_present(), "{message}");
}

#[test]
fn doctor_reports_this_machine() {
    let out = edge(&["doctor"]);
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    let line = |what: &str| {
        report.lines().find(|l| l.starts_with(what)).unwrap_or_else(|| panic!("no {what} line in {report}")).to_string()
    };
    if !device::driver_present() {
        assert!(line("GPU ").contains("missing") && line("GPU ").contains("no CUDA driver"), "{report}");
    }
    assert!(line("TensorRT headers").contains(" ok "), "{report}");
    assert!(line("ONNX Runtime").contains(" ok ") && line("ONNX Runtime").contains("libonnxruntime"), "{report}");
    // Software elements the pipelines fall back to are installed by scripts/install.sh.
    for element in ["x264enc", "mp4mux", "matroskamux"] {
        assert!(line(&format!("GStreamer {element}")).contains(" ok "), "{report}");
    }
    gstreamer::init().unwrap();
    for element in ["nvvidconv", "nvv4l2h264enc"] {
        let found = cyclegan_edge::pipeline::element_available(element);
        assert_eq!(line(&format!("GStreamer {element}")).contains(" ok "), found, "{report}");
    }
}
