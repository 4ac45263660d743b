//! A live network camera that goes away mid-run, as a service sees it: the run ends within
//! `--timeout-s` with the restartable exit status, the output file is finished and plays back the
//! frames that came before, and the same command works again once the camera is back. With
//! `--reconnect true` and a second stream, the run waits for the camera instead, continues it in a
//! new file, and the other stream misses no frame meanwhile.
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cyclegan_edge::pipeline::decode_file;

mod common;

/// The restartable status (`cyclegan-edge run --help`).
const INPUT_UNAVAILABLE: i32 = 75;

/// edge/python/rtsp_server.py on a free port: an RTSP camera that dies after `frames` frames.
struct Camera {
    child: Child,
    url: String,
}

impl Camera {
    fn start(frames: u32) -> Self {
        // The listener is closed before the server binds the port.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Self::start_on(port, frames)
    }

    fn start_on(port: u16, frames: u32) -> Self {
        let script = common::workspace().join("edge/python/rtsp_server.py");
        // Debian's Python: the RTSP server's bindings are Debian packages (scripts/install.sh).
        let mut child = Command::new("/usr/bin/python3")
            .arg(&script)
            .args([port.to_string(), frames.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "{} did not start", script.display());
        Self { child, url: format!("rtsp://127.0.0.1:{port}/stream") }
    }

    fn port(&self) -> u16 {
        self.url.trim_start_matches("rtsp://127.0.0.1:").trim_end_matches("/stream").parse().unwrap()
    }

    /// Waits until the camera has died on its own (after its frames).
    fn wait_gone(&mut self) {
        self.child.wait().unwrap();
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn edge_run(args: &[&str]) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    let out = common::own_binary(env!("CARGO_BIN_EXE_cyclegan-edge"))
        .current_dir(common::workspace())
        .arg("run")
        .args(args)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code(), text, started.elapsed())
}

/// The number before `what` in `text` ("12 frames in" -> 12).
fn count_before(text: &str, what: &str) -> u64 {
    let at = text.find(what).unwrap_or_else(|| panic!("no {what:?} in: {text}"));
    text[..at].split_whitespace().last().unwrap().parse().unwrap()
}

#[test]
fn a_camera_that_goes_away_ends_the_run_restartably_with_a_finished_file() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("out.mp4");
    let output = out_path.to_str().unwrap();
    let camera = Camera::start(45);
    let (code, text, took) = edge_run(&[
        "--input",
        &camera.url,
        "--timeout-s",
        "3",
        "--inference-size",
        "64x48",
        "--output",
        output,
        "--stats",
        "false",
    ]);
    assert_eq!(code, Some(INPUT_UNAVAILABLE), "{text}");
    assert!(text.contains(&camera.url) && text.contains("frames before"), "{text}");
    // 3 s of 15 fps, then at most the timeout (and the muxer's finishing) after it went away.
    assert!(took < Duration::from_secs(3 + 3 + 10), "took {took:?}: {text}");
    let translated = count_before(&text, "frames in");
    assert!(translated > 0, "{text}");
    let video = decode_file(&out_path).unwrap();
    assert_eq!(video.frames, translated, "{text}");
    assert_eq!(count_before(&text, "frames of"), translated, "{text}");
    drop(camera);

    // Not there at all: the same status, at once, and nothing written.
    std::fs::remove_file(&out_path).unwrap();
    let (code, text, took) =
        edge_run(&["--input", "rtsp://127.0.0.1:9/stream", "--timeout-s", "3", "--output", output]);
    assert_eq!(code, Some(INPUT_UNAVAILABLE), "{text}");
    assert!(took < Duration::from_secs(15) && !out_path.exists(), "{took:?}: {text}");

    // Back again: what a service's restart runs now works.
    let camera = Camera::start(0);
    let (code, text, _) = edge_run(&[
        "--input",
        &camera.url,
        "--num-frames",
        "10",
        "--inference-size",
        "64x48",
        "--output",
        output,
        "--stats",
        "false",
    ]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(decode_file(&out_path).unwrap().frames, 10, "{text}");
}

#[test]
fn a_reconnecting_camera_continues_in_a_new_file_while_another_stream_misses_no_frame() {
    let dir = tempfile::tempdir().unwrap();
    let (camera_out, other_out) = (dir.path().join("cam.mp4"), dir.path().join("other.mp4"));
    let mut camera = Camera::start(45);
    let run = common::own_binary(env!("CARGO_BIN_EXE_cyclegan-edge"))
        .current_dir(common::workspace())
        .args(["run", "--reconnect", "true", "--timeout-s", "2", "--inference-size", "64x48", "--stats", "false"])
        .args(["--live", "true", "--width", "160", "--height", "120", "--framerate", "15"])
        .args(["--stream", &camera.url, camera_out.to_str().unwrap()])
        .args(["--stream", "test://ball", other_out.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The camera dies after 3 s; back 1 s later on the same address.
    camera.wait_gone();
    std::thread::sleep(Duration::from_secs(1));
    let _camera = Camera::start_on(camera.port(), 0);
    // Its second file grows once the run has found it again.
    let second = dir.path().join(".cam-1.mp4.partial");
    let deadline = Instant::now() + Duration::from_secs(40);
    while std::fs::metadata(&second).map_or(0, |m| m.len()) < 20_000 {
        assert!(Instant::now() < deadline, "the camera's second file did not grow");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Ctrl-C finishes every stream's file.
    unsafe { libc::kill(run.id() as i32, libc::SIGINT) };
    let out = run.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("trying again in"), "{text}");
    let line = |file: &Path| {
        text.lines().find(|l| l.contains(&format!("-> {}", file.display()))).unwrap_or_else(|| panic!("{text}"))
    };
    for file in [&camera_out, &dir.path().join("cam-1.mp4"), &other_out] {
        let translated = count_before(line(file), "frames in");
        assert!(translated > 0, "{}: {text}", file.display());
        assert_eq!(decode_file(file).unwrap().frames, translated, "{}: {text}", file.display());
    }
    // The other stream ran through: live at 15 fps for the whole run, none dropped.
    let other = line(&other_out);
    assert!(other.contains("dropped 0"), "{text}");
    let frames = count_before(other, "frames in") as f64;
    let seconds: f64 = other.split(" frames in ").nth(1).and_then(|t| t.split(' ').next()).unwrap().parse().unwrap();
    assert!(frames >= 15.0 * seconds * 0.8, "{other}");
}
