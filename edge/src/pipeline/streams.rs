//! The streams of one run, each a pipeline of its own on a thread of its own: one camera's EOS,
//! error or reconnect never touches another, while their `cyclegan` elements share the model
//! (`crate::backend::shared`). A stream whose live input goes away is tried again with back-off
//! where `[input] reconnect` says so, its file output continued in a new segment.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use super::mosaic::{Mosaic, Tap};
use super::{Event, LiveStats, RunReport};
use crate::config::{EdgeConfig, StreamConfig};
use crate::{Error, Result};

/// The first wait before a lost input is tried again; it doubles up to [`LONGEST_WAIT`].
const FIRST_WAIT: Duration = Duration::from_secs(1);
const LONGEST_WAIT: Duration = Duration::from_secs(30);

/// How one stream of the run went.
#[derive(Debug)]
pub struct StreamOutcome {
    pub stream: StreamConfig,
    /// Each segment's output and report: the stream's run until its input ended or went away.
    pub segments: Vec<(String, RunReport)>,
    /// Why the stream ended short: a failure, or an input that went away and did not come back.
    pub error: Option<Error>,
}

/// How a run of several streams went.
#[derive(Debug)]
pub struct Streams {
    pub outcomes: Vec<StreamOutcome>,
    /// `[output] mosaic`, where there is one: where it went, or why it failed.
    pub mosaic: Option<Result<String>>,
}

/// An [`Event`] sent from a stream's thread.
enum Owned {
    Note(String),
    Stats(LiveStats),
}

/// The output of segment `n` of a stream: the file itself first, then NAME-1.mp4, NAME-2.mp4 ...
pub fn segment_output(output: &str, n: usize) -> String {
    let path = std::path::Path::new(output);
    match (n, path.file_stem(), path.extension()) {
        (0, ..) | (_, None, _) | (_, _, None) => output.to_string(),
        _ if output.contains("://") && !output.starts_with("file://") => output.to_string(),
        (_, Some(stem), Some(ext)) => path
            .with_file_name(format!("{}-{n}.{}", stem.to_string_lossy(), ext.to_string_lossy()))
            .to_string_lossy()
            .into_owned(),
    }
}

/// Runs every stream of `config` until each has ended, and the mosaic of them where `[output]
/// mosaic` asks for one; `on_event` hears each stream's notes and statistics with the stream's
/// index (the mosaic's notes with the first stream's). Ctrl-C (`interrupt`) ends them all,
/// finishing their files.
pub fn run_streams(
    config: &EdgeConfig,
    interrupt: &AtomicBool,
    mut on_event: impl FnMut(usize, Event<'_>),
) -> Result<Streams> {
    config.validate()?;
    let streams = config.streams();
    let mut config = config.clone();
    if config.inference.concurrent_batches == 0 {
        config.inference.concurrent_batches = crate::backend::shared::auto_concurrent_batches(streams.len());
    }
    let config = &config;
    let mosaic = match &config.output.mosaic {
        Some(target) => {
            super::init()?;
            let (mosaic, notes) = Mosaic::build(config, streams.len(), target)?;
            notes.iter().for_each(|note| on_event(0, Event::Note(note)));
            mosaic.start()?;
            Some(mosaic)
        }
        None => None,
    };
    let (events, heard) = mpsc::channel::<(usize, Owned)>();
    let outcomes = std::thread::scope(|scope| {
        let threads: Vec<_> = streams
            .iter()
            .enumerate()
            .map(|(i, stream)| {
                let (config, events) = (config.for_stream(stream), events.clone());
                let tap = mosaic.as_ref().map(|m| m.tap(i));
                std::thread::Builder::new()
                    .name(format!("stream-{i}"))
                    .spawn_scoped(scope, move || {
                        run_one(&config, interrupt, tap.as_ref(), &|e| drop(events.send((i, e))))
                    })
                    .map_err(|e| Error::Pipeline(format!("starting stream {}: {e}", i + 1)))
            })
            .collect::<Result<_>>()?;
        drop(events);
        for (i, event) in heard {
            match &event {
                Owned::Note(text) => on_event(i, Event::Note(text)),
                Owned::Stats(stats) => on_event(i, Event::Stats(stats)),
            }
        }
        Ok::<_, Error>(threads.into_iter().map(|t| t.join().expect("a stream's thread does not panic")).collect())
    })?;
    Ok(Streams { outcomes, mosaic: mosaic.map(Mosaic::finish) })
}

/// One stream, segment after segment while its input comes back.
fn run_one(config: &EdgeConfig, interrupt: &AtomicBool, tap: Option<&Tap>, send: &dyn Fn(Owned)) -> StreamOutcome {
    let stream = StreamConfig { input: config.input.input.clone(), output: config.output.output.clone() };
    let mut outcome = StreamOutcome { stream, segments: Vec::new(), error: None };
    let mut wait = FIRST_WAIT;
    loop {
        let mut segment = config.clone();
        segment.output.output = segment_output(&config.output.output, outcome.segments.len());
        let result = super::run_tapped(&segment, interrupt, tap, |event| match event {
            Event::Note(text) => send(Owned::Note(text.to_string())),
            Event::Stats(stats) => send(Owned::Stats(stats.clone())),
        });
        let retry = config.input.reconnect && !interrupt.load(Ordering::SeqCst);
        match result {
            Ok(report) => {
                let lost = report.lost.clone();
                if report.frames > 0 {
                    wait = FIRST_WAIT;
                }
                outcome.segments.push((segment.output.output.clone(), report));
                match lost {
                    Some(why) if retry => send(Owned::Note(format!(
                        "went away ({why}); {} is finished, trying again in {} s",
                        segment.output.output,
                        wait.as_secs()
                    ))),
                    Some(why) => {
                        outcome.error = Some(Error::InputUnavailable(why));
                        return outcome;
                    }
                    None => return outcome,
                }
            }
            Err(Error::InputUnavailable(why)) if retry => {
                send(Owned::Note(format!("{why}; trying again in {} s", wait.as_secs())));
            }
            Err(e) => {
                outcome.error = Some(e);
                return outcome;
            }
        }
        if !sleep_unless(interrupt, wait) {
            outcome.error = Some(Error::InputUnavailable(format!(
                "--input {}: stopped by Ctrl-C while waiting for it to come back",
                config.input.input
            )));
            return outcome;
        }
        wait = (wait * 2).min(LONGEST_WAIT);
    }
}

/// Sleeps `wait` unless `interrupt` is set meanwhile (then false).
fn sleep_unless(interrupt: &AtomicBool, wait: Duration) -> bool {
    let step = Duration::from_millis(100);
    let mut slept = Duration::ZERO;
    while slept < wait {
        if interrupt.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(step);
        slept += step;
    }
    !interrupt.load(Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_of_a_file_output_are_numbered_and_other_outputs_stay() {
        assert_eq!(segment_output("out/cam.mp4", 0), "out/cam.mp4");
        assert_eq!(segment_output("out/cam.mp4", 2), "out/cam-2.mp4");
        assert_eq!(segment_output("cam.mkv", 1), "cam-1.mkv");
        assert_eq!(segment_output("file:///v/cam.mp4", 1), "file:///v/cam-1.mp4");
        assert_eq!(segment_output("display://", 3), "display://");
        assert_eq!(segment_output("null://", 1), "null://");
    }

    /// The frames of a video file as packed RGB, with their size.
    fn frames(path: &std::path::Path) -> (Vec<Vec<u8>>, usize, usize) {
        use gstreamer as gst;
        use gstreamer::prelude::*;
        let pipeline = gst::parse::launch(&format!(
            "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink sync=false",
            path.display()
        ))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        let sink = pipeline.by_name("sink").unwrap().downcast::<gstreamer_app::AppSink>().unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        let (mut frames, mut size) = (Vec::new(), (0, 0));
        while let Ok(sample) = sink.pull_sample() {
            let s = sample.caps().unwrap().structure(0).unwrap().to_owned();
            let (w, h) = (s.get::<i32>("width").unwrap() as usize, s.get::<i32>("height").unwrap() as usize);
            let map = sample.buffer().unwrap().map_readable().unwrap();
            let stride = map.len() / h;
            frames.push((0..h).flat_map(|y| map[y * stride..y * stride + 3 * w].to_vec()).collect());
            size = (w, h);
        }
        pipeline.set_state(gst::State::Null).unwrap();
        (frames, size.0, size.1)
    }

    #[test]
    fn a_mosaic_tiles_every_stream() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = EdgeConfig::default();
        config.input.num_frames = 20;
        (config.input.width, config.input.height) = (64, 48);
        config.inference.backend = crate::backend::BackendKind::Cpu;
        config.inference.inference_size = "32".into();
        let mosaic = dir.path().join("mosaic.mp4");
        config.output.mosaic = Some(mosaic.to_string_lossy().into_owned());
        config.stream = ["test://ball", "test://smpte", "test://snow"]
            .map(|input| StreamConfig { input: input.into(), output: "null://".into() })
            .to_vec();
        let streams = run_streams(&config, &AtomicBool::new(false), |_, _| {}).unwrap();
        assert_eq!(streams.mosaic.unwrap().unwrap(), mosaic.to_string_lossy());
        // Three tiles of 64x48 in two columns: 128x96, the fourth cell black. A tile is black
        // until its stream's first frame and after its last: each shows its stream in some frame.
        let (frames, w, h) = frames(&mosaic);
        assert_eq!((w, h), (128, 96));
        let brightest = |x0: usize, y0: usize| {
            let mean = |rgb: &Vec<u8>| {
                let values = (y0..y0 + 48).flat_map(|y| rgb[(y * w + x0) * 3..(y * w + x0 + 64) * 3].iter());
                values.map(|&v| v as f64).sum::<f64>() / (64.0 * 48.0 * 3.0)
            };
            frames.iter().map(mean).fold(0.0, f64::max)
        };
        for (x, y) in [(0, 0), (64, 0), (0, 48)] {
            assert!(brightest(x, y) > 40.0, "tile at {x},{y} never shows its stream: {}", brightest(x, y));
        }
        assert!(brightest(64, 48) < 20.0, "the cell without a stream: {}", brightest(64, 48));
    }

    #[test]
    fn streams_run_side_by_side_each_to_its_own_output() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = EdgeConfig::default();
        config.input.num_frames = 3;
        config.input.width = 64;
        config.input.height = 48;
        config.inference.backend = crate::backend::BackendKind::Cpu;
        config.inference.threads = 1;
        config.inference.inference_size = "32".into();
        let out = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
        config.stream = vec![
            StreamConfig { input: "test://ball".into(), output: out("ball.mp4") },
            StreamConfig { input: "test://snow".into(), output: out("snow.mkv") },
            StreamConfig { input: "test://".into(), output: "null://".into() },
        ];
        let outcomes = run_streams(&config, &AtomicBool::new(false), |_, _| {}).unwrap().outcomes;
        assert_eq!(outcomes.len(), 3);
        for (outcome, stream) in outcomes.iter().zip(&config.stream) {
            assert!(outcome.error.is_none(), "{:?}", outcome.error);
            assert_eq!(outcome.segments.len(), 1);
            assert_eq!((outcome.segments[0].0.as_str(), outcome.segments[0].1.frames), (stream.output.as_str(), 3));
        }
        for name in ["ball.mp4", "snow.mkv"] {
            let video = super::super::decode_file(&dir.path().join(name)).unwrap();
            assert_eq!((video.frames, video.width, video.height), (3, 64, 48), "{name}");
        }
    }
}
