//! Pipeline configuration: a TOML file (`configs/edge/*.toml`) whose every field can be
//! overridden by a `cyclegan-edge run` flag of the same name.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backend::BackendKind;
use crate::backend::tensorrt::{DEFAULT_PRECISION, PrecisionChoice};
use crate::{Error, Result};

cyclegan_settings::section! {
    /// The `[inference]` section: the generator and how it runs (the `cyclegan` element's
    /// properties, named with dashes there).
    pub struct InferenceConfig, flags InferenceFlags, heading "Inference" {
        /// Generator ONNX, or pretrained:NAME (`cyclegan-edge models list`: fetched into the cache
        /// on first use); none: the bundled summer->winter demo.
        model: Option<PathBuf> = None => PathBuf as Some,
        /// auto (TensorRT where available, else the CPU), cpu, tensorrt.
        backend: BackendKind = BackendKind::Auto,
        /// auto (the model's training resolution as the shorter side), a shorter side like 256, or
        /// WxH.
        inference_size: String = "auto".into(),
        /// Blend with the original frame: 1 translation only, 0 passthrough.
        strength: f64 = 1.0,
        /// Less flicker on still scenes, 0 to 1: blends the previous output into the current one
        /// where the input did not change, scaling the flicker by 1 - this (0.5 halves it; 0: off,
        /// each frame on its own). Moving things are not blended, so they leave no trail.
        temporal_smoothing: f64 = 0.0,
        /// CPU inference threads of each concurrent batch (0: all cores, split between them).
        threads: usize = 0,
        /// TensorRT engine precision (int8 needs the Q/DQ model of cyclegan-calib); auto: the
        /// fastest engine on this device within 35 dB of ONNX Runtime's FP32 output, decided on
        /// the first frame and kept in the engine cache.
        precision: PrecisionChoice = PrecisionChoice::from(DEFAULT_PRECISION),
        /// TensorRT engine file to use, e.g. from `cyclegan-edge build` (rebuilt there if it does
        /// not match); none: the cache.
        engine: Option<PathBuf> = None => PathBuf as Some,
        /// Folder of cached TensorRT engines; none: ~/.cache/cyclegan-edge/engines.
        engine_cache: Option<PathBuf> = None => PathBuf as Some,
        /// Frames translated at once: 2 overlaps copies with GPU work at one frame more latency, 1
        /// is the lowest latency (0: the backend's choice, 2 on TensorRT, 1 on the CPU).
        frames_in_flight: u32 = 0,
        /// Streams of one process that use the same model with the same settings share one loaded
        /// copy, their frames translated in batches (CPU backend; TensorRT engines are per
        /// stream for now). false: this stream loads its own.
        share_model: bool = true,
        /// Milliseconds the oldest waiting frame of a shared model waits for other streams' frames
        /// of its size to run with it (0: no batching; well under a frame interval).
        batch_window_ms: f64 = cyclegan_runtime::batch::DEFAULT_WINDOW.as_secs_f64() * 1e3,
        /// Frames of several streams translated in one batch at most (0: the backend's choice, 1 on
        /// the CPU, where a batch runs no faster than its frames one by one and takes more memory).
        max_batch: u32 = 0,
        /// Batches of a shared model translated at once, each on its own share of the CPU cores
        /// (the threads split between them) and its own buffers, with one copy of the model: on
        /// two cores, two frames on one core each translate more frames a second than one on both
        /// (0: `run` takes one per stream up to the cores, an element on its own 1).
        concurrent_batches: u32 = 0,
    }
}

/// The longest batching window taken: a second is many frames of any camera.
pub const MAX_BATCH_WINDOW_MS: f64 = 1000.0;
/// The largest batch taken (the element's `max-batch` property has the same bound).
pub const MAX_BATCH: u32 = 64;
/// The most batches run at once (the element's `concurrent-batches` has the same bound).
pub const MAX_CONCURRENT_BATCHES: u32 = 16;

cyclegan_settings::section! {
    /// The `[input]` section: where frames come from.
    pub struct InputConfig, flags InputFlags, heading "Input" {
        /// test://[PATTERN], a video file, v4l2:///dev/videoN, csi://N (Jetson CSI camera),
        /// rtsp://HOST/PATH or another URI.
        input: String = "test://".into(),
        /// Frame width asked of test patterns and cameras (files and streams keep theirs).
        width: u32 = 640,
        /// Frame height asked of test patterns and cameras.
        height: u32 = 360,
        /// Frames per second asked of test patterns and cameras.
        framerate: u32 = 30,
        /// Run test:// in real time like a camera (cameras and streams always are).
        live: bool = false,
        /// Stop after N frames (0: at the end of the input or on Ctrl-C).
        num_frames: u64 = 0,
        /// Seconds an input may take to deliver a frame (at start, and between frames when live).
        timeout_s: u64 = 10,
        /// Frames a live input may get ahead of the model before the oldest is dropped.
        queue_frames: u32 = 2,
        /// A camera or stream (RTSP, v4l2, CSI) that is not there or goes away is tried again, 1 s
        /// later doubling to 30 s, until Ctrl-C, while the other streams run on; a file output
        /// gets a new segment (NAME-1.mp4, NAME-2.mp4, ...) each time it comes back. false: the
        /// stream ends there (exit status 75 for a service manager to restart the run).
        reconnect: bool = false,
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

cyclegan_settings::section! {
    /// The `[output]` section: where translated frames go.
    pub struct OutputConfig, flags OutputFlags, heading "Output" {
        /// display://, null://, or a .mp4 / .mkv file (H.264).
        output: String = "out.mp4".into(),
        /// H.264 bitrate of file outputs.
        bitrate_kbps: u32 = 4000,
        /// H.264 encoder: auto (the Jetson's hardware encoder where present, else x264enc),
        /// x264enc, nvv4l2h264enc.
        encoder: Encoder = Encoder::Auto,
        /// Window of display://: auto (nv3dsink where present, else autovideosink), autovideosink,
        /// nv3dsink.
        display_sink: DisplaySink = DisplaySink::Auto,
        /// Print the live line (fps, latency, drops) once a second.
        stats: bool = true,
        /// One more output with every stream's translation tiled in a grid, each tile [input]
        /// width x height: display://, null:// or a .mp4 / .mkv file; none: no mosaic.
        mosaic: Option<String> = None => String as Some,
        /// Write the run's summary here as JSON (per stream: frames, fps, drops, latency
        /// percentiles, batch sizes; the process's peak memory), for scripts and benchmarks.
        report: Option<PathBuf> = None => PathBuf as Some,
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

/// One `[[stream]]`: an input and where its translation goes; the other `[input]` and `[output]`
/// keys hold for every stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    pub input: String,
    pub output: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeConfig {
    pub inference: InferenceConfig,
    pub input: InputConfig,
    pub output: OutputConfig,
    /// Several streams through the one model (`[[stream]]`); none: `[input] input` to `[output]
    /// output`.
    pub stream: Vec<StreamConfig>,
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
        for stream in &mut config.stream {
            if !stream.input.contains("://")
                && let Some(found) = find_near(Path::new(&stream.input), folder)
            {
                stream.input = found.to_string_lossy().into_owned();
            }
        }
        if let Some(found) = config.inference.model.as_deref().and_then(|m| find_near(m, folder)) {
            config.inference.model = Some(found);
        }
        Ok(config)
    }

    /// The streams of the run: the `[[stream]]`s, or the one of `[input]` and `[output]`.
    pub fn streams(&self) -> Vec<StreamConfig> {
        if self.stream.is_empty() {
            vec![StreamConfig { input: self.input.input.clone(), output: self.output.output.clone() }]
        } else {
            self.stream.clone()
        }
    }

    /// The configuration of one stream of the run: its input and output in `[input]` and
    /// `[output]`, and no other streams.
    pub fn for_stream(&self, stream: &StreamConfig) -> Self {
        let mut one = self.clone();
        one.input.input = stream.input.clone();
        one.output.output = stream.output.clone();
        one.stream.clear();
        one
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
        let window = self.inference.batch_window_ms;
        if !(0.0..=MAX_BATCH_WINDOW_MS).contains(&window) {
            return bad(format!(
                "--batch-window-ms {window} (batch_window_ms in [inference]): must be between 0 and \
                 {MAX_BATCH_WINDOW_MS} (a fraction of a frame interval)"
            ));
        }
        if self.inference.max_batch > MAX_BATCH {
            return bad(format!(
                "--max-batch {} (max_batch in [inference]): at most {MAX_BATCH} (0: the backend's choice)",
                self.inference.max_batch
            ));
        }
        if self.inference.concurrent_batches > MAX_CONCURRENT_BATCHES {
            return bad(format!(
                "--concurrent-batches {} (concurrent_batches in [inference]): at most {MAX_CONCURRENT_BATCHES} (0: one \
                 per stream up to the CPU cores)",
                self.inference.concurrent_batches
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
        let streams = self.streams();
        if let Some(mosaic) = &self.output.mosaic
            && streams.iter().any(|s| &s.output == mosaic)
            && !matches!(mosaic.as_str(), "null://" | "display://")
        {
            return bad(format!("--mosaic {mosaic}: a stream writes that file already; give the mosaic its own"));
        }
        for (i, stream) in streams.iter().enumerate() {
            let same = streams[..i].iter().position(|s| s.output == stream.output);
            if let Some(first) = same.filter(|_| !matches!(stream.output.as_str(), "null://" | "display://")) {
                return bad(format!(
                    "streams {} and {} both write {}: give each stream its own output ([[stream]] output or \
                     --stream INPUT OUTPUT)",
                    first + 1,
                    i + 1,
                    stream.output
                ));
            }
        }
        Ok(())
    }
}

/// `cyclegan-edge run` flags; each one replaces the config file's key of the same name.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Overrides {
    #[command(flatten)]
    pub inference: InferenceFlags,
    #[command(flatten)]
    pub input: InputFlags,
    #[command(flatten)]
    pub output: OutputFlags,
    /// A stream of several through the one model: its input and output (repeat for each stream;
    /// replaces the config's [[stream]] list, and --input/--output).
    #[arg(long, num_args = 2, value_names = ["INPUT", "OUTPUT"], help_heading = "Streams")]
    pub stream: Vec<String>,
}

impl Overrides {
    pub fn apply(&self, c: &mut EdgeConfig) {
        self.inference.apply(&mut c.inference);
        self.input.apply(&mut c.input);
        self.output.apply(&mut c.output);
        if !self.stream.is_empty() {
            c.stream = self
                .stream
                .chunks(2)
                .map(|pair| StreamConfig { input: pair[0].clone(), output: pair[1].clone() })
                .collect();
        }
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
        Overrides { input: InputFlags { width: Some(128), ..Default::default() }, ..Default::default() }.apply(&mut c);
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
        let smoothing = InferenceFlags { temporal_smoothing: Some(0.5), ..Default::default() };
        Overrides { inference: smoothing, ..Default::default() }.apply(&mut c);
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

    #[test]
    fn streams_come_from_the_config_or_the_flags_and_each_needs_its_own_output() {
        let mut c: EdgeConfig = toml::from_str(
            "[output]\nbitrate_kbps = 2000\n[[stream]]\ninput = \"test://ball\"\noutput = \"a.mp4\"\n\
             [[stream]]\ninput = \"rtsp://cam/1\"\noutput = \"b.mp4\"\n",
        )
        .unwrap();
        let inputs = |c: &EdgeConfig| c.streams().into_iter().map(|s| s.input).collect::<Vec<_>>();
        assert_eq!(inputs(&c), ["test://ball", "rtsp://cam/1"]);
        let second = c.for_stream(&c.streams()[1]);
        assert_eq!((second.input.input.as_str(), second.output.output.as_str()), ("rtsp://cam/1", "b.mp4"));
        assert_eq!((second.output.bitrate_kbps, second.stream.len()), (2000, 0));
        c.validate().unwrap();
        let flags = Overrides {
            stream: ["test://", "x.mp4", "test://snow", "x.mp4"].map(String::from).to_vec(),
            ..Default::default()
        };
        flags.apply(&mut c);
        assert_eq!(inputs(&c), ["test://", "test://snow"]);
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("streams 1 and 2 both write x.mp4"), "{err}");
        c.stream[1].output = "null://".into();
        c.validate().unwrap();
        c.output.mosaic = Some("x.mp4".into());
        assert!(c.validate().unwrap_err().to_string().contains("--mosaic x.mp4"));
        c.output.mosaic = Some("all.mp4".into());
        c.validate().unwrap();
        // Without [[stream]]: the one stream of [input] and [output].
        assert_eq!(inputs(&EdgeConfig::default()), ["test://"]);
        let err = toml::from_str::<EdgeConfig>("[[stream]]\ninput = \"test://\"\n").unwrap_err().to_string();
        assert!(err.contains("output"), "{err}");
    }
}
