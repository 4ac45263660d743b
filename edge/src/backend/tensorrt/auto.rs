//! `precision auto`: the engine variant chosen on the device that runs it. INT8 Q/DQ engines are
//! often slower than FP16 on Orin for generators like ours, and TensorRT's native InstanceNorm
//! can be slower than its plugin, so each candidate that applies is built, timed at the
//! pipeline's size and checked against ONNX Runtime's FP32 output; the fastest that keeps the
//! PSNR floor wins, and the decision is stored beside the engines.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::cache::{sha256_hex, write_atomic};
use super::options::{InstanceNorm, Precision, Profile, Shape};
use super::{TensorRt, TensorrtBackend, TensorrtOptions};
use crate::backend::{Backend, CpuBackend, CpuOptions};
use crate::model::Model;
use crate::{Error, Result};

/// The least PSNR (dB, against ONNX Runtime's FP32 output) a candidate must keep.
pub const DEFAULT_PSNR_FLOOR: f64 = 35.0;

/// Timed runs per candidate, after as many warm-up runs.
const TIMED_RUNS: usize = 30;

/// Images each candidate is checked on when none are given.
pub const CHECK_IMAGES: usize = 4;

/// One engine variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Candidate {
    pub precision: Precision,
    pub instance_norm: InstanceNorm,
}

impl std::fmt::Display for Candidate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.instance_norm {
            InstanceNorm::Native => write!(f, "{}", self.precision),
            InstanceNorm::Plugin => write!(f, "{}, InstanceNorm plugin", self.precision),
        }
    }
}

/// Every combination of `precisions` and the InstanceNorms TensorRT has (the plugin where its
/// plugins are installed).
pub fn candidates(precisions: &[Precision], plugins: bool) -> Vec<Candidate> {
    let norms: &[InstanceNorm] =
        if plugins { &[InstanceNorm::Native, InstanceNorm::Plugin] } else { &[InstanceNorm::Native] };
    precisions
        .iter()
        .flat_map(|&precision| norms.iter().map(move |&instance_norm| Candidate { precision, instance_norm }))
        .collect()
}

/// The candidates that apply to `models`: FP16 of a float model, and INT8 where its Q/DQ model is
/// given (a Q/DQ model alone is INT8 only).
pub fn candidates_for(models: &Models<'_>, plugins: bool) -> Vec<Candidate> {
    let precisions: &[Precision] = match (models.float.quantized, models.int8.is_some()) {
        (true, _) => &[Precision::Int8],
        (false, true) => &[Precision::Fp16, Precision::Int8],
        (false, false) => &[Precision::Fp16],
    };
    candidates(precisions, plugins)
}

/// What one candidate measured, or why it could not be.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Measured { ms: f64, psnr: f64 },
    Failed { why: String },
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Trial {
    pub candidate: Candidate,
    pub outcome: Outcome,
}

/// The choice, with everything it was made from.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Decision {
    pub chosen: Candidate,
    pub floor_db: f64,
    pub shape: Shape,
    pub trials: Vec<Trial>,
}

/// The fastest candidate whose PSNR keeps `floor_db` (the first listed on a tie).
pub fn decide(trials: Vec<Trial>, floor_db: f64, shape: Shape) -> Result<Decision> {
    let chosen = trials
        .iter()
        .filter_map(|t| match t.outcome {
            Outcome::Measured { ms, psnr } if psnr >= floor_db => Some((t.candidate, ms)),
            _ => None,
        })
        .fold(None, |best: Option<(Candidate, f64)>, (c, ms)| match best {
            Some((_, best_ms)) if best_ms <= ms => best,
            _ => Some((c, ms)),
        });
    match chosen {
        Some((chosen, _)) => Ok(Decision { chosen, floor_db, shape, trials }),
        None => {
            let found: Vec<String> = trials
                .iter()
                .map(|t| match &t.outcome {
                    Outcome::Measured { psnr, .. } => format!("{} {psnr:.1} dB", t.candidate),
                    Outcome::Failed { why } => format!("{} failed ({why})", t.candidate),
                })
                .collect();
            Err(Error::Tensorrt(format!(
                "precision auto: no candidate keeps the {floor_db} dB floor against ONNX Runtime's FP32 output at {}: \
                 {}. Use --precision fp32, lower the floor (--psnr-floor), or calibrate the INT8 model again",
                Profile::fixed(shape).describe(),
                found.join(", ")
            )))
        }
    }
}

impl Decision {
    /// The trials as a Markdown table, the chosen one marked.
    pub fn table(&self) -> String {
        let mut out = format!(
            "| candidate | ms/frame {} | PSNR vs ORT FP32 (dB) | |\n|---|---|---|---|\n",
            Profile::fixed(self.shape).describe()
        );
        for t in &self.trials {
            let (ms, psnr, note) = match &t.outcome {
                Outcome::Measured { ms, psnr } => {
                    let note = if t.candidate == self.chosen {
                        "chosen".to_string()
                    } else if *psnr < self.floor_db {
                        format!("below the {} dB floor", self.floor_db)
                    } else {
                        "slower".to_string()
                    };
                    (format!("{ms:.2}"), format!("{psnr:.1}"), note)
                }
                Outcome::Failed { why } => ("-".into(), "-".into(), format!("failed: {why}")),
            };
            let _ = writeln!(out, "| {} | {ms} | {psnr} | {note} |", t.candidate);
        }
        out
    }

    pub fn store(&self, path: &Path) -> Result<()> {
        write_atomic(path, serde_json::to_string_pretty(self).expect("a decision serializes").as_bytes())
    }

    /// A stored decision; None where there is none or it is unreadable (decided again then).
    pub fn load(path: &Path) -> Option<Decision> {
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
    }
}

/// Where the decision for `models` on this TensorRT and GPU at `shape` is kept in the cache.
pub fn decision_path(cache_dir: &Path, models: &[&Model], tensorrt: &TensorRt, gpu: &str, shape: Shape) -> PathBuf {
    let mut id = format!("{} {gpu} {shape:?}", tensorrt.version);
    for model in models {
        id.push(' ');
        id.push_str(&sha256_hex(&model.bytes));
    }
    cache_dir.join(format!("auto-{}.json", &sha256_hex(id.as_bytes())[..16]))
}

/// Inputs the candidates are checked on when none are given: smooth colour fields with edges,
/// deterministic, in [-1,1].
pub fn check_inputs(shape: Shape, count: usize) -> Vec<Vec<f32>> {
    let [_, c, h, w] = shape.map(|d| d as usize);
    (0..count)
        .map(|k| {
            (0..c * h * w)
                .map(|i| {
                    let (ch, y, x) = (i / (h * w), i / w % h, i % w);
                    let wave = ((x as f32 * 0.05 + k as f32).sin() + (y as f32 * 0.07 + ch as f32).cos()) * 0.4;
                    let block = if (x / 32 + y / 32 + k) % 2 == 0 { 0.15 } else { -0.15 };
                    (wave + block).clamp(-1.0, 1.0)
                })
                .collect()
        })
        .collect()
}

/// The first `count` images of `dir` (by name) at `shape`'s size, as tensors in [-1,1].
pub fn images_from(dir: &Path, shape: Shape, count: usize) -> Result<Vec<Vec<f32>>> {
    let (w, h) = (shape[3] as u32, shape[2] as u32);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::Invalid(format!("{}: {e}", dir.display())))?
        .flatten()
        .map(|entry| entry.path())
        .filter(|p| image::ImageFormat::from_path(p).is_ok())
        .collect();
    files.sort();
    files.truncate(count);
    if files.is_empty() {
        return Err(Error::Invalid(format!("{}: no images (PNG, JPEG, ...)", dir.display())));
    }
    files
        .iter()
        .map(|file| {
            let rgb = image::open(file).map_err(|e| Error::Invalid(format!("{}: {e}", file.display())))?.to_rgb8();
            let rgb = image::imageops::resize(&rgb, w, h, image::imageops::FilterType::Triangle);
            let plane = (w * h) as usize;
            let mut tensor = vec![0.0; 3 * plane];
            for (i, pixel) in rgb.pixels().enumerate() {
                for c in 0..3 {
                    tensor[c * plane + i] = pixel[c] as f32 / 127.5 - 1.0;
                }
            }
            Ok(tensor)
        })
        .collect()
}

/// The models a decision weighs: the FP32 (or FP16) export, and its Q/DQ model if any.
pub struct Models<'a> {
    pub float: &'a Model,
    pub int8: Option<&'a Model>,
}

impl<'a> Models<'a> {
    /// The model an engine of `precision` is built from.
    pub fn for_precision(&self, precision: Precision) -> &'a Model {
        match precision {
            Precision::Int8 => self.int8.unwrap_or(self.float),
            _ => self.float,
        }
    }
}

/// Builds (into `base`'s cache) an engine of every candidate for `profile` and measures it on
/// `inputs` at the profile's optimal shape: mean time per run on the device, mean PSNR against
/// ONNX Runtime's FP32 output of the float model.
pub fn measure(
    models: &Models<'_>,
    base: &TensorrtOptions,
    candidates: &[Candidate],
    profile: Profile,
    inputs: &[Vec<f32>],
) -> Result<Vec<Trial>> {
    let dims = profile.opt.map(|d| d as usize);
    let mut cpu = CpuBackend::open(models.float, &CpuOptions::default())?;
    let reference = inputs
        .iter()
        .map(|input| {
            let mut out = Vec::new();
            cpu.run(input, dims, &mut out)?;
            Ok(out)
        })
        .collect::<cyclegan_runtime::Result<Vec<_>>>()?;
    Ok(candidates
        .iter()
        .map(|&candidate| {
            let model = models.for_precision(candidate.precision);
            let options = TensorrtOptions {
                precision: candidate.precision,
                instance_norm: candidate.instance_norm,
                auto: None,
                profile: Some(profile),
                engine: None,
                ..base.clone()
            };
            let outcome = match run_candidate(model, &options, dims, inputs, &reference) {
                Ok((ms, psnr)) => Outcome::Measured { ms, psnr },
                Err(e) => Outcome::Failed { why: e.to_string() },
            };
            Trial { candidate, outcome }
        })
        .collect())
}

fn run_candidate(
    model: &Model,
    options: &TensorrtOptions,
    dims: [usize; 4],
    inputs: &[Vec<f32>],
    reference: &[Vec<f32>],
) -> Result<(f64, f64)> {
    let mut backend = TensorrtBackend::open(model, options)?;
    let mut outputs = Vec::new();
    for input in inputs {
        let mut out = Vec::new();
        backend.run(input, dims, &mut out)?;
        outputs.push(out);
    }
    let psnr = cyclegan_runtime::quality::mean_psnr(&outputs, reference);
    let mut out = Vec::new();
    for _ in 0..TIMED_RUNS {
        backend.run(&inputs[0], dims, &mut out)?;
    }
    let mut total = 0.0;
    for _ in 0..TIMED_RUNS {
        backend.run(&inputs[0], dims, &mut out)?;
        total += backend.device_ms().unwrap_or(f64::NAN);
    }
    Ok((total / TIMED_RUNS as f64, psnr))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(precision: Precision, instance_norm: InstanceNorm) -> Candidate {
        Candidate { precision, instance_norm }
    }

    fn measured(candidate: Candidate, ms: f64, psnr: f64) -> Trial {
        Trial { candidate, outcome: Outcome::Measured { ms, psnr } }
    }

    const SHAPE: Shape = [1, 3, 360, 640];

    #[test]
    fn candidates_are_those_that_apply() {
        let float = Model::bundled().unwrap();
        let proto = cyclegan_onnx::io::decode_model(&float.bytes).unwrap();
        let plan = cyclegan_calibration::graph::plan(&proto, "bundled").unwrap();
        let q = cyclegan_calibration::qdq::Quantization {
            activation_scales: plan.activations().into_iter().map(|a| (a, 0.05)).collect(),
            ..Default::default()
        };
        let qdq = cyclegan_calibration::qdq::quantized_model(&proto, &plan, &q, &serde_json::json!({})).unwrap();
        let int8 =
            Model::from_bytes(std::borrow::Cow::Owned(cyclegan_onnx::io::encode_model(&qdq)), "G.int8.onnx").unwrap();
        let fp16 = c(Precision::Fp16, InstanceNorm::Native);
        let alone = Models { float: &float, int8: None };
        assert_eq!(candidates_for(&alone, false), vec![fp16]);
        let both = Models { float: &float, int8: Some(&int8) };
        assert_eq!(candidates_for(&both, false), vec![fp16, c(Precision::Int8, InstanceNorm::Native)]);
        let all = candidates_for(&both, true);
        assert_eq!(all.len(), 4);
        assert!(all.contains(&c(Precision::Int8, InstanceNorm::Plugin)));
        let quantized = Models { float: &int8, int8: None };
        assert_eq!(candidates_for(&quantized, false), vec![c(Precision::Int8, InstanceNorm::Native)]);
    }

    #[test]
    fn the_fastest_candidate_above_the_floor_wins() {
        let fp16 = c(Precision::Fp16, InstanceNorm::Native);
        let plugin = c(Precision::Fp16, InstanceNorm::Plugin);
        let int8 = c(Precision::Int8, InstanceNorm::Native);
        // INT8 slower than FP16, as often on Orin: FP16 with the plugin wins.
        let trials = vec![measured(fp16, 9.0, 48.0), measured(plugin, 7.5, 48.1), measured(int8, 11.0, 41.0)];
        let decision = decide(trials, DEFAULT_PSNR_FLOOR, SHAPE).unwrap();
        assert_eq!(decision.chosen, plugin);
        let table = decision.table();
        assert!(table.contains("| fp16, InstanceNorm plugin | 7.50 | 48.1 | chosen |"), "{table}");
        assert!(table.contains("| int8 | 11.00 | 41.0 | slower |"), "{table}");
        // The fastest below the floor loses to a slower one above it.
        let trials = vec![measured(fp16, 9.0, 48.0), measured(int8, 4.0, 30.0)];
        let decision = decide(trials, DEFAULT_PSNR_FLOOR, SHAPE).unwrap();
        assert_eq!(decision.chosen, fp16);
        assert!(decision.table().contains("| int8 | 4.00 | 30.0 | below the 35 dB floor |"));
        // A candidate that failed to build is passed over and said why.
        let failed = Trial { candidate: plugin, outcome: Outcome::Failed { why: "no libnvinfer_plugin".into() } };
        let decision = decide(vec![failed, measured(int8, 4.0, 40.0)], DEFAULT_PSNR_FLOOR, SHAPE).unwrap();
        assert_eq!(decision.chosen, int8);
        assert!(decision.table().contains("failed: no libnvinfer_plugin"));
        // Ties go to the first listed (FP16 before INT8).
        let decision = decide(vec![measured(fp16, 5.0, 40.0), measured(int8, 5.0, 40.0)], 35.0, SHAPE).unwrap();
        assert_eq!(decision.chosen, fp16);
    }

    #[test]
    fn no_candidate_above_the_floor_is_one_message_naming_each() {
        let fp16 = c(Precision::Fp16, InstanceNorm::Native);
        let int8 = c(Precision::Int8, InstanceNorm::Native);
        let failed = Trial { candidate: int8, outcome: Outcome::Failed { why: "parser".into() } };
        let err = decide(vec![measured(fp16, 9.0, 33.2), failed], 35.0, SHAPE).unwrap_err().to_string();
        assert!(err.contains("no candidate keeps the 35 dB floor"), "{err}");
        assert!(err.contains("at 640x360: fp16 33.2 dB, int8 failed (parser)"), "{err}");
        assert!(err.contains("--precision fp32"), "{err}");
    }

    #[test]
    fn a_decision_is_stored_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let fp16 = c(Precision::Fp16, InstanceNorm::Native);
        let decision = decide(vec![measured(fp16, 9.0, 48.0)], 35.0, SHAPE).unwrap();
        let path = dir.path().join("G.engine.auto.json");
        decision.store(&path).unwrap();
        assert_eq!(Decision::load(&path), Some(decision));
        std::fs::write(&path, "{").unwrap();
        assert_eq!(Decision::load(&path), None);
    }

    #[test]
    fn check_images_are_read_resized_and_scaled() {
        let dir = tempfile::tempdir().unwrap();
        image::RgbImage::from_pixel(40, 30, image::Rgb([255, 0, 128])).save(dir.path().join("b.png")).unwrap();
        image::RgbImage::from_pixel(8, 8, image::Rgb([0, 255, 0])).save(dir.path().join("a.png")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not an image").unwrap();
        let tensors = images_from(dir.path(), [1, 3, 12, 16], 4).unwrap();
        assert_eq!(tensors.len(), 2);
        let plane = 12 * 16;
        // a.png first: green, i.e. -1, 1, -1.
        assert_eq!((tensors[0][0], tensors[0][plane], tensors[0][2 * plane]), (-1.0, 1.0, -1.0));
        assert_eq!((tensors[1][0], tensors[1][plane]), (1.0, -1.0));
        assert!((tensors[1][2 * plane] - (128.0 / 127.5 - 1.0)).abs() < 1e-6);
        let empty = tempfile::tempdir().unwrap();
        assert!(images_from(empty.path(), [1, 3, 12, 16], 4).unwrap_err().to_string().contains("no images"));
    }

    #[test]
    fn check_inputs_are_deterministic_images_in_range() {
        let inputs = check_inputs([1, 3, 64, 96], 3);
        assert_eq!(inputs.len(), 3);
        assert!(inputs.iter().all(|i| i.len() == 3 * 64 * 96 && i.iter().all(|v| (-1.0..=1.0).contains(v))));
        assert_ne!(inputs[0], inputs[1]);
        assert_eq!(inputs, check_inputs([1, 3, 64, 96], 3));
    }
}
