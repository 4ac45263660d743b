//! `cyclegan-edge bench temporal`: how steady a generator is on video, on any ONNX file and
//! backend, with and without the element's temporal smoothing: the warping error on sequences
//! with known motion and the flicker of a still scene (`cyclegan_runtime::motion`, the same
//! sequences as `cyclegan-train eval temporal`), and what each costs per frame.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cyclegan_runtime::motion::{self, Rgb, TemporalScore};
use cyclegan_runtime::smoothing::Smoother;

use crate::backend::{self, BackendKind, BackendOptions};
use crate::model::Model;
use crate::preprocess::InferenceSize;
use crate::translator::FrameTranslator;
use crate::{Error, Result};

pub struct TemporalOptions {
    pub model: Option<PathBuf>,
    pub backend: BackendKind,
    pub threads: usize,
    /// A folder of images to make sequences from.
    pub input: PathBuf,
    pub frames: usize,
    /// At most this many images of `input` (0: all).
    pub max_images: usize,
    /// `temporal-smoothing` values to compare.
    pub smoothing: Vec<f64>,
}

/// One smoothing value's result.
pub struct TemporalRow {
    pub smoothing: f64,
    pub score: TemporalScore,
    /// Per frame: translation alone, and the smoothing's share of it.
    pub translate_ms: f64,
    pub smoothing_ms: f64,
}

fn load_images(dir: &Path, max: usize) -> Result<Vec<Rgb>> {
    let bad = |why: String| Error::Invalid(format!("--input {}: {why}", dir.display()));
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| bad(e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| ["png", "jpg", "jpeg", "bmp", "webp"].contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();
    if max > 0 {
        files.truncate(max);
    }
    if files.is_empty() {
        return Err(bad("holds no PNG, JPEG, BMP or WebP images".into()));
    }
    files
        .iter()
        .map(|f| {
            let img = image::open(f).map_err(|e| bad(format!("{}: {e}", f.display())))?.to_rgb8();
            Ok(Rgb::new(img.width() as usize, img.height() as usize, img.into_raw()))
        })
        .collect()
}

pub fn run(opts: &TemporalOptions) -> Result<Vec<TemporalRow>> {
    let sources = load_images(&opts.input, opts.max_images)?;
    let model = Model::load(opts.model.as_deref())?;
    let training_resolution = model.metadata.training_resolution;
    let options = BackendOptions { threads: opts.threads, ..Default::default() };
    let mut rows = Vec::new();
    for &s in &opts.smoothing {
        let mut smoother = Smoother::new(s)?;
        let opened = backend::open(opts.backend, &model, &options)?;
        if let Some(note) = opened.note {
            eprintln!("{note}");
        }
        let mut translator: Option<(FrameTranslator, (usize, usize))> = None;
        let (mut translating, mut smoothing, mut frames) = (Duration::ZERO, Duration::ZERO, 0u32);
        let mut backend = Some(opened.backend);
        let score = motion::measure(&sources, opts.frames, |frame, index| -> Result<Rgb> {
            let size = (frame.width, frame.height);
            // Translate at the frame's own size, as `cyclegan-train eval temporal` does.
            if translator.as_ref().is_none_or(|(_, at)| *at != size) {
                let backend = match backend.take() {
                    Some(b) => b,
                    None => backend::open(opts.backend, &model, &options)?.backend,
                };
                let exact = InferenceSize::Exact(size.0 as u32, size.1 as u32);
                translator = Some((FrameTranslator::new(backend, exact, training_resolution, 1.0), size));
            }
            if index == 0 {
                smoother.reset();
            }
            let (t, _) = translator.as_mut().expect("made above");
            let start = Instant::now();
            let mut out = t.translate_rgb(&frame.data, size)?.to_vec();
            let translated = Instant::now();
            smoother.apply(&frame.data, &mut out, size.0, size.1);
            smoothing += translated.elapsed();
            translating += translated - start;
            frames += 1;
            Ok(Rgb::new(size.0, size.1, out))
        })?;
        let per_frame = |d: Duration| d.as_secs_f64() * 1e3 / frames.max(1) as f64;
        rows.push(TemporalRow {
            smoothing: s,
            score,
            translate_ms: per_frame(translating),
            smoothing_ms: per_frame(smoothing),
        });
    }
    Ok(rows)
}

/// The table `bench temporal` prints (Markdown): one row per smoothing value.
pub fn table(rows: &[TemporalRow]) -> String {
    let Some(first) = rows.first() else { return String::new() };
    let mut t = format!(
        "{} image(s), {} frames per sequence; warping error x 10^-3 (input floor {:.4}); still-scene flicker in \
         8-bit levels (input {:.3})\n\n| temporal-smoothing | warping error | {} | still-scene flicker | ms/frame \
         translate | ms/frame smoothing (share) |\n|---|---|{}---|---|---|\n",
        first.score.images,
        first.score.frames,
        first.score.input * 1e3,
        first.score.flicker_input,
        motion::Motion::ALL.map(|m| m.name()).join(" | "),
        "---|".repeat(motion::Motion::ALL.len()),
    );
    for r in rows {
        let per_motion: Vec<String> = r.score.motions.iter().map(|m| format!("{:.4}", m.output * 1e3)).collect();
        t += &format!(
            "| {:.2} | {:.4} | {} | {:.3} | {:.2} | {:.3} ({:.1}%) |\n",
            r.smoothing,
            r.score.output * 1e3,
            per_motion.join(" | "),
            r.score.flicker_output,
            r.translate_ms,
            r.smoothing_ms,
            100.0 * r.smoothing_ms / r.translate_ms.max(1e-9)
        );
    }
    t
}
