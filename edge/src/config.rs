//! Pipeline configuration: a TOML file (`configs/edge/*.toml`) whose every field can be
//! overridden by a `cyclegan-edge run` flag of the same name.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backend::BackendKind;
use crate::backend::tensorrt::{DEFAULT_PRECISION, Precision};
use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InferenceConfig {
    /// Generator ONNX; empty: the bundled summer->winter demo.
    pub model: Option<PathBuf>,
    pub backend: BackendKind,
    /// `auto`, a shorter side (`256`) or `WxH`.
    pub inference_size: String,
    /// 1: the translation only; 0: the original frame.
    pub strength: f64,
    /// Still-scene flicker scaled by 1 - this, where the input does not change (0: off; see
    /// `cyclegan_runtime::smoothing`).
    pub temporal_smoothing: f64,
    /// CPU inference threads (0: all cores).
    pub threads: usize,
    /// TensorRT engine precision.
    pub precision: Precision,
    /// TensorRT engine file to use (rebuilt there when it does not match); empty: the cache.
    pub engine: Option<PathBuf>,
    /// Folder of cached TensorRT engines; empty: ~/.cache/cyclegan-edge/engines.
    pub engine_cache: Option<PathBuf>,
    /// Frames translated at once: 2 overlaps copies and GPU work at one frame more latency;
    /// 0: the backend's choice (2 on TensorRT, 1 on the CPU).
    pub frames_in_flight: u32,
}

impl Default for InferenceConfig {
    fn default() -> Self {
        Self {
            model: None,
            backend: BackendKind::Auto,
            inference_size: "auto".into(),
            strength: 1.0,
            temporal_smoothing: 0.0,
            threads: 0,
            precision: DEFAULT_PRECISION,
            engine: None,
            engine_cache: None,
            frames_in_flight: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InputConfig {
    /// `test://[PATTERN]`, a file, `v4l2:///dev/videoN`, `csi://N` (Jetson), `rtsp://...`, or any URI.
    pub input: String,
    /// Frame size asked of test patterns and cameras (files and streams keep theirs).
    pub width: u32,
    pub height: u32,
    pub framerate: u32,
    /// Run the test pattern in real time, like a camera (cameras and streams always are).
    pub live: bool,
    /// Stop after this many frames (0: when the input ends or on Ctrl-C).
    pub num_frames: u64,
    /// Seconds an input may take to deliver a frame before the run fails.
    pub timeout_s: u64,
    /// Frames a live input may get ahead of the model before the oldest is dropped.
    pub queue_frames: u32,
}

impl Default for InputConfig {
    fn default() -> Self {
        Self {
            input: "test://".into(),
            width: 640,
            height: 360,
            framerate: 30,
            live: false,
            num_frames: 0,
            timeout_s: 10,
            queue_frames: 2,
        }
    }
}

/// The H.264 encoder of file outputs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Encoder {
    /// The Jetson's hardware encoder where GStreamer has it, else x264enc.
    #[default]
    Auto,
    /// Software, on the CPU.
    #[value(name = "x264enc")]
    X264enc,
    /// NVIDIA's hardware encoder (Jetson Orin NX/AGX; the Orin Nano has none).
    #[value(name = "nvv4l2h264enc")]
    Nvv4l2h264enc,
}

/// The window `display://` opens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DisplaySink {
    /// nv3dsink where GStreamer has it (Jetson), else autovideosink.
    #[default]
    Auto,
    #[value(name = "autovideosink")]
    Autovideosink,
    #[value(name = "nv3dsink")]
    Nv3dsink,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    /// `display://`, `null://`, or a `.mp4` / `.mkv` file (H.264).
    pub output: String,
    /// H.264 bitrate for file outputs.
    pub bitrate_kbps: u32,
    pub encoder: Encoder,
    pub display_sink: DisplaySink,
    /// Print the live statistics line.
    pub stats: bool,
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self {
            output: "out.mp4".into(),
            bitrate_kbps: 4000,
            encoder: Encoder::Auto,
            display_sink: DisplaySink::Auto,
            stats: true,
        }
    }
}

/// `relative` in the working directory or, failing that, in `folder` or one above it; `None`
/// where it is absolute, empty, or nowhere (the run then names it as given).
fn find_near(relative: &Path, folder: &Path) -> Option<PathBuf> {
    if relative.is_absolute() || relative.as_os_str().is_empty() || relative.exists() {
        return None;
    }
    let folder = folder.canonicalize().ok()?;
    folder.ancestors().map(|dir| dir.join(relative)).find(|p| p.exists())
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeConfig {
    pub inference: InferenceConfig,
    pub input: InputConfig,
    pub output: OutputConfig,
}

impl EdgeConfig {
    /// Reads a config file. The files it names (the input video, the model) are looked for in the
    /// working directory, then in the config's folder and the folders above it: the shipped configs
    /// name the bundled clip as `models/...`, which is in the checkout's root and in
    /// /usr/share/cyclegan-edge where the package installs them.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Invalid(format!("config {}: cannot read: {e}", path.display())))?;
        let mut config: Self =
            toml::from_str(&text).map_err(|e| Error::Invalid(format!("config {}: {e}", path.display())))?;
        let folder = path.parent().unwrap_or(Path::new("."));
        if !config.input.input.contains("://")
            && let Some(found) = find_near(Path::new(&config.input.input), folder)
        {
            config.input.input = found.to_string_lossy().into_owned();
        }
        if let Some(found) = config.inference.model.as_deref().and_then(|m| find_near(m, folder)) {
            config.inference.model = Some(found);
        }
        Ok(config)
    }

    /// Checks values that do not depend on the machine.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(m));
        self.inference.inference_size.parse::<crate::preprocess::InferenceSize>()?;
        if !(0.0..=1.0).contains(&self.inference.strength) {
            return bad(format!("--strength {}: must be between 0 and 1", self.inference.strength));
        }
        let smoothing = self.inference.temporal_smoothing;
        if !crate::smoothing::RANGE.contains(&smoothing) {
            return bad(format!(
                "--temporal-smoothing {smoothing} (temporal_smoothing in [inference]): must be between {} and {}",
                crate::smoothing::RANGE.start(),
                crate::smoothing::RANGE.end()
            ));
        }
        if self.inference.frames_in_flight > 8 {
            return bad(format!(
                "--frames-in-flight {}: at most 8 (2 already overlaps copies with GPU work)",
                self.inference.frames_in_flight
            ));
        }
        let i = &self.input;
        if i.width == 0 || i.height == 0 || i.framerate == 0 {
            return bad(format!(
                "--width {} --height {} --framerate {}: must be positive",
                i.width, i.height, i.framerate
            ));
        }
        if i.timeout_s == 0 {
            return bad("--timeout-s 0: an input needs at least a second to start".into());
        }
        if i.queue_frames == 0 {
            return bad("--queue-frames 0: the queue must hold at least one frame".into());
        }
        if self.output.bitrate_kbps == 0 {
            return bad("--bitrate-kbps 0: must be positive".into());
        }
        Ok(())
    }
}

/// `cyclegan-edge run` flags; each one replaces the config file's field of the same name.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Overrides {
    /// Generator ONNX (default: the bundled summer->winter demo).
    #[arg(long, help_heading = "Inference")]
    pub model: Option<PathBuf>,
    /// auto (TensorRT where available, else the CPU), cpu, tensorrt.
    #[arg(long, help_heading = "Inference", value_parser = parse_backend)]
    pub backend: Option<BackendKind>,
    /// auto (the model's training resolution as the shorter side), a shorter side like 256, or WxH.
    #[arg(long, help_heading = "Inference")]
    pub inference_size: Option<String>,
    /// Blend with the original frame: 1 translation only, 0 passthrough.
    #[arg(long, help_heading = "Inference")]
    pub strength: Option<f64>,
    /// Less flicker on still scenes, 0 to 1: blends the previous output into the current one
    /// where the input did not change, scaling the flicker by 1 - this (0.5 halves it; 0: off,
    /// each frame on its own). Moving things are not blended, so they leave no trail.
    #[arg(long, help_heading = "Inference")]
    pub temporal_smoothing: Option<f64>,
    /// CPU inference threads (0: all cores).
    #[arg(long, help_heading = "Inference")]
    pub threads: Option<usize>,
    /// TensorRT engine precision (int8 needs the Q/DQ model of cyclegan-calib).
    #[arg(long, help_heading = "Inference", value_enum)]
    pub precision: Option<Precision>,
    /// TensorRT engine file to use, e.g. from `cyclegan-edge build` (rebuilt there if it does not match).
    #[arg(long, help_heading = "Inference")]
    pub engine: Option<PathBuf>,
    /// Folder of cached TensorRT engines.
    #[arg(long, help_heading = "Inference")]
    pub engine_cache: Option<PathBuf>,
    /// Frames translated at once: 2 overlaps copies with GPU work at one frame more latency, 1 is
    /// the lowest latency (0: the backend's choice, 2 on TensorRT, 1 on the CPU).
    #[arg(long, help_heading = "Inference")]
    pub frames_in_flight: Option<u32>,
    /// test://[PATTERN], a video file, v4l2:///dev/videoN, csi://N (Jetson CSI camera), rtsp://HOST/PATH
    /// or another URI.
    #[arg(long, help_heading = "Input")]
    pub input: Option<String>,
    /// Frame width asked of test patterns and cameras.
    #[arg(long, help_heading = "Input")]
    pub width: Option<u32>,
    /// Frame height asked of test patterns and cameras.
    #[arg(long, help_heading = "Input")]
    pub height: Option<u32>,
    /// Frames per second asked of test patterns and cameras.
    #[arg(long, help_heading = "Input")]
    pub framerate: Option<u32>,
    /// Run test:// in real time like a camera.
    #[arg(long, help_heading = "Input")]
    pub live: Option<bool>,
    /// Stop after N frames (0: at the end of the input or on Ctrl-C).
    #[arg(long, help_heading = "Input")]
    pub num_frames: Option<u64>,
    /// Seconds an input may take to deliver a frame (at start, and between frames when live).
    #[arg(long, help_heading = "Input")]
    pub timeout_s: Option<u64>,
    /// Frames a live input may get ahead of the model before the oldest is dropped.
    #[arg(long, help_heading = "Input")]
    pub queue_frames: Option<u32>,
    /// display://, null://, or a .mp4 / .mkv file.
    #[arg(long, help_heading = "Output")]
    pub output: Option<String>,
    /// H.264 bitrate of file outputs.
    #[arg(long, help_heading = "Output")]
    pub bitrate_kbps: Option<u32>,
    /// H.264 encoder: auto (the Jetson's hardware encoder where present, else x264enc), x264enc,
    /// nvv4l2h264enc.
    #[arg(long, help_heading = "Output", value_enum)]
    pub encoder: Option<Encoder>,
    /// Window of display://: auto (nv3dsink where present, else autovideosink), autovideosink, nv3dsink.
    #[arg(long, help_heading = "Output", value_enum)]
    pub display_sink: Option<DisplaySink>,
    /// Print the live line (fps, latency, drops) once a second.
    #[arg(long, help_heading = "Output")]
    pub stats: Option<bool>,
}

fn parse_backend(s: &str) -> Result<BackendKind, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

impl Overrides {
    pub fn apply(&self, c: &mut EdgeConfig) {
        fn set<T: Clone>(slot: &mut T, v: &Option<T>) {
            if let Some(v) = v {
                *slot = v.clone();
            }
        }
        if self.model.is_some() {
            c.inference.model = self.model.clone();
        }
        set(&mut c.inference.backend, &self.backend);
        set(&mut c.inference.inference_size, &self.inference_size);
        set(&mut c.inference.strength, &self.strength);
        set(&mut c.inference.temporal_smoothing, &self.temporal_smoothing);
        set(&mut c.inference.threads, &self.threads);
        set(&mut c.inference.precision, &self.precision);
        if self.engine.is_some() {
            c.inference.engine = self.engine.clone();
        }
        if self.engine_cache.is_some() {
            c.inference.engine_cache = self.engine_cache.clone();
        }
        set(&mut c.inference.frames_in_flight, &self.frames_in_flight);
        set(&mut c.input.input, &self.input);
        set(&mut c.input.width, &self.width);
        set(&mut c.input.height, &self.height);
        set(&mut c.input.framerate, &self.framerate);
        set(&mut c.input.live, &self.live);
        set(&mut c.input.num_frames, &self.num_frames);
        set(&mut c.input.timeout_s, &self.timeout_s);
        set(&mut c.input.queue_frames, &self.queue_frames);
        set(&mut c.output.output, &self.output);
        set(&mut c.output.bitrate_kbps, &self.bitrate_kbps);
        set(&mut c.output.encoder, &self.encoder);
        set(&mut c.output.display_sink, &self.display_sink);
        set(&mut c.output.stats, &self.stats);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_a_config_names_are_found_from_anywhere() {
        let dir = tempfile::tempdir().unwrap();
        let share = dir.path().join("share");
        std::fs::create_dir_all(share.join("configs")).unwrap();
        std::fs::create_dir_all(share.join("models/demo")).unwrap();
        std::fs::write(share.join("models/demo/clip.mp4"), b"").unwrap();
        let config = share.join("configs/camera.toml");
        std::fs::write(&config, "[input]\ninput = \"models/demo/clip.mp4\"\n[inference]\nmodel = \"nowhere.onnx\"\n")
            .unwrap();
        let c = EdgeConfig::from_file(&config).unwrap();
        assert_eq!(Path::new(&c.input.input), share.canonicalize().unwrap().join("models/demo/clip.mp4"));
        // Not found anywhere: left as written, for the run's message to name.
        assert_eq!(c.inference.model.as_deref(), Some(Path::new("nowhere.onnx")));
    }

    #[test]
    fn shipped_configs_parse_and_validate() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/edge");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                EdgeConfig::from_file(&path).unwrap().validate().unwrap();
                n += 1;
            }
        }
        assert!(n >= 1);
    }

    #[test]
    fn flags_win_and_bad_values_are_named() {
        let mut c: EdgeConfig = toml::from_str("[input]\nwidth = 320\n[inference]\nstrength = 0.5").unwrap();
        Overrides { width: Some(128), ..Default::default() }.apply(&mut c);
        assert_eq!((c.input.width, c.input.height, c.inference.strength), (128, 360, 0.5));
        let err = toml::from_str::<EdgeConfig>("[input]\nwidht = 3").unwrap_err().to_string();
        assert!(err.contains("widht"), "{err}");
        c.inference.strength = 2.0;
        assert!(c.validate().unwrap_err().to_string().contains("--strength"));
        c.inference.strength = 1.0;
        c.inference.inference_size = "17x3".into();
        assert!(c.validate().is_err());
        c.inference.inference_size = "auto".into();
        c.inference.frames_in_flight = 9;
        assert!(c.validate().unwrap_err().to_string().contains("--frames-in-flight 9"));
        c.inference.frames_in_flight = 0;
        Overrides { temporal_smoothing: Some(0.5), ..Default::default() }.apply(&mut c);
        assert_eq!(c.inference.temporal_smoothing, 0.5);
        c.validate().unwrap();
        for bad in [1.5, -0.5, f64::NAN, f64::INFINITY] {
            c.inference.temporal_smoothing = bad;
            let err = c.validate().unwrap_err().to_string();
            assert!(
                err.contains("--temporal-smoothing")
                    && err.contains("temporal_smoothing")
                    && err.contains("between 0 and 1"),
                "{err}"
            );
        }
        let c: EdgeConfig = toml::from_str("[inference]\ntemporal_smoothing = 0.25").unwrap();
        assert_eq!(c.inference.temporal_smoothing, 0.25);
    }
}
