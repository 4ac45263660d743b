//! The plugin with GStreamer's own tools: `gst-inspect-1.0` finds the element and
//! `gst-launch-1.0 ... ! cyclegan ! ... mp4mux` writes a file that decodes to the right frames;
//! `model=pretrained:NAME` is read from the cache `cyclegan-edge models get` fills.
use std::process::Command;

/// A folder holding only the libgstcyclegan.so cargo built for this test (it lies in deps/ next
/// to the test binary, among other shared objects GStreamer should not scan).
fn plugin_dir() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let built = exe.parent().unwrap().join("libgstcyclegan.so");
        assert!(built.is_file(), "no {}", built.display());
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(&built, dir.path().join("libgstcyclegan.so")).unwrap();
        dir
    })
    .path()
}

/// GStreamer's `tool`: the system's, or, when the tests run emulated for another architecture
/// (scripts/cross-test.sh), that architecture's build of it (`CYCLEGAN_TEST_GST_TOOLS`) through
/// `CYCLEGAN_TEST_RUNNER` (qemu): the plugin must load in a GStreamer of its own architecture.
fn gst_command(tool: &str) -> Command {
    match std::env::var("CYCLEGAN_TEST_RUNNER") {
        Ok(runner) if !runner.is_empty() => {
            let tools = std::env::var("CYCLEGAN_TEST_GST_TOOLS")
                .expect("CYCLEGAN_TEST_GST_TOOLS: the folder of GStreamer's tools built for the emulated architecture");
            let mut cmd = Command::new(runner);
            cmd.arg(std::path::Path::new(&tools).join(tool));
            cmd
        }
        _ => Command::new(tool),
    }
}

fn gst_tool(tool: &str, args: &[&str]) -> std::process::Output {
    gst_tool_in(tool, args, &[])
}

/// `tool` with `env` set as well.
fn gst_tool_in(tool: &str, args: &[&str], env: &[(&str, &std::path::Path)]) -> std::process::Output {
    // From the checkout's root, as the README runs them: the element finds ONNX Runtime in .venv.
    gst_command(tool)
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .env("GST_PLUGIN_PATH", plugin_dir())
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e} (install gstreamer1.0-tools)"))
}

#[test]
fn gst_inspect_lists_the_element_and_its_properties() {
    let out = gst_tool("gst-inspect-1.0", &["cyclegan"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for property in [
        "model",
        "backend",
        "inference-size",
        "strength",
        "temporal-smoothing",
        "threads",
        "stats-interval",
        "precision",
        "engine",
        "engine-cache",
        "frames-in-flight",
    ] {
        assert!(text.contains(&format!("  {property} ")), "no property {property}:\n{text}");
    }
    assert!(text.contains("libgstcyclegan.so"));
}

#[test]
fn gst_launch_writes_an_mp4_with_every_frame() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("winter.mp4");
    let location = format!("location={}", out.display());
    // Emulated (scripts/cross-test.sh) a frame takes seconds: a few still pass every element.
    let frames = if std::env::var_os("CYCLEGAN_EMULATED").is_some() { 4 } else { 24 };
    let num_buffers = format!("num-buffers={frames}");
    let result = gst_tool(
        "gst-launch-1.0",
        &[
            "-q",
            "videotestsrc",
            &num_buffers,
            "!",
            "video/x-raw,width=178,height=98,framerate=24/1",
            "!",
            "videoconvert",
            "!",
            "cyclegan",
            "inference-size=64",
            "threads=2",
            "!",
            "videoconvert",
            "!",
            "video/x-raw,format=I420",
            "!",
            "x264enc",
            "!",
            "mp4mux",
            "!",
            "filesink",
            &location,
        ],
    );
    assert!(result.status.success(), "gst-launch-1.0 failed: {}", String::from_utf8_lossy(&result.stderr));
    let video = cyclegan_edge::pipeline::decode_file(&out).unwrap();
    assert_eq!((video.frames, video.width, video.height), (frames, 178, 98));
}

#[test]
fn gst_launch_reports_a_missing_model_and_fails() {
    let result = gst_tool(
        "gst-launch-1.0",
        &[
            "videotestsrc",
            "num-buffers=2",
            "!",
            "videoconvert",
            "!",
            "cyclegan",
            "model=/no/such/G.onnx",
            "!",
            "fakesink",
        ],
    );
    assert!(!result.status.success());
    let text = format!("{}{}", String::from_utf8_lossy(&result.stdout), String::from_utf8_lossy(&result.stderr));
    assert!(text.contains("/no/such/G.onnx"), "{text}");
}

#[test]
fn gst_launch_takes_a_pretrained_name_from_the_cache_only() {
    let cache = tempfile::tempdir().unwrap();
    let launch = || {
        let args = ["videotestsrc", "num-buffers=2", "!", "videoconvert", "!", "cyclegan"];
        let rest = ["model=pretrained:summer2winter_yosemite", "inference-size=32", "!", "fakesink"];
        gst_tool_in("gst-launch-1.0", &[&args[..], &rest].concat(), &[("CYCLEGAN_CACHE_DIR", cache.path())])
    };
    let result = launch();
    let text = format!("{}{}", String::from_utf8_lossy(&result.stdout), String::from_utf8_lossy(&result.stderr));
    assert!(!result.status.success() && text.contains("cyclegan-edge models get summer2winter_yosemite"), "{text}");

    // Where `models get` puts it, the element finds it.
    let pretrained = cache.path().join("pretrained");
    std::fs::create_dir_all(&pretrained).unwrap();
    let bundled = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/summer2winter-demo/generator.onnx");
    std::fs::copy(bundled, pretrained.join("summer2winter_yosemite.fp32.onnx")).unwrap();
    let result = launch();
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
}
