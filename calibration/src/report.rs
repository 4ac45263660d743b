//! What calibration measured: a table for the terminal, JSON, a side-by-side PNG, and the
//! held-out input tensors (so anyone can re-measure the written model).
use std::path::Path;

use serde::Serialize;

use crate::images::Sample;
use crate::{Error, Result};

#[derive(Debug, Clone, Serialize)]
pub struct Quality {
    /// Mean PSNR of the outputs against the FP32 model's, on tensors in [-1,1] (peak-to-peak 2).
    pub psnr_db: f64,
    pub ssim: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    pub name: String,
    pub op: String,
    /// The quantized activation.
    pub input: String,
    pub amax: f32,
    pub threshold: f32,
    pub scale: f32,
    /// PSNR vs FP32 with only this layer quantized (the sensitivity pass).
    pub alone_psnr_db: Option<f64>,
    /// Left in floating point.
    pub kept_fp: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub model: String,
    pub method: String,
    pub calibration_images: usize,
    pub held_out_images: Vec<String>,
    pub fp16: Quality,
    /// Every layer quantized.
    pub int8_all: Quality,
    /// What was written (`--keep-fp` / `--target-psnr` layers in floating point).
    pub int8: Quality,
    pub target_psnr_db: Option<f64>,
    pub kept_fp: Vec<String>,
    pub layers: Vec<LayerReport>,
}

impl Report {
    pub fn table(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "{} ({} calibration images, {} held out, method {})\n\n",
            self.model,
            self.calibration_images,
            self.held_out_images.len(),
            self.method
        ));
        out.push_str("| variant vs FP32 | PSNR (dB) | SSIM |\n|---|---|---|\n");
        out.push_str(&format!("| FP16 graph | {:.2} | {:.4} |\n", self.fp16.psnr_db, self.fp16.ssim));
        out.push_str(&format!("| INT8, all layers | {:.2} | {:.4} |\n", self.int8_all.psnr_db, self.int8_all.ssim));
        out.push_str(&format!(
            "| INT8 written ({} layers kept in float) | {:.2} | {:.4} |\n",
            self.kept_fp.len(),
            self.int8.psnr_db,
            self.int8.ssim
        ));
        out.push_str("\n| layer | op | threshold | scale | PSNR quantized alone (dB) | kept float |\n|---|---|---|---|---|---|\n");
        for l in &self.layers {
            out.push_str(&format!(
                "| {} | {} | {:.4} | {:.3e} | {} | {} |\n",
                l.name,
                l.op,
                l.threshold,
                l.scale,
                l.alone_psnr_db.map(|p| format!("{p:.2}")).unwrap_or_else(|| "-".into()),
                if l.kept_fp { "yes" } else { "" }
            ));
        }
        out
    }
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io { path: path.to_path_buf(), message: format!("cannot write: {e}") }
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().ok_or_else(|| io_error(path, "not a file path"))?.to_string_lossy().into_owned();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, path)).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_error(path, e)
    })
}

/// `report.json`, `report.md`, `compare.png` (FP32 | FP16 | INT8 | |INT8 - FP32| x 4 for up to
/// four held-out images) and `heldout.safetensors` (their input tensors) in `dir`.
pub fn write(dir: &Path, report: &Report, samples: &[Sample], rows: &[[&[f32]; 3]]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    let json = serde_json::to_vec_pretty(report).expect("plain data");
    write_atomic(&dir.join("report.json"), &json)?;
    write_atomic(&dir.join("report.md"), report.table().as_bytes())?;

    let bytes: Vec<Vec<u8>> = samples.iter().map(|s| s.tensor.iter().flat_map(|v| v.to_le_bytes()).collect()).collect();
    let tensors: Vec<(String, safetensors::tensor::TensorView<'_>)> = samples
        .iter()
        .zip(&bytes)
        .enumerate()
        .map(|(i, (s, b))| {
            let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.shape.to_vec(), b)
                .expect("shape matches the data");
            (format!("input_{i:03}"), view)
        })
        .collect();
    let data = safetensors::serialize(tensors, None).map_err(|e| io_error(dir, e))?;
    write_atomic(&dir.join("heldout.safetensors"), &data)?;

    let shown: Vec<_> = samples.iter().zip(rows).take(4).collect();
    if let Some((first, _)) = shown.first() {
        let (h, w) = (first.shape[2], first.shape[3]);
        let mut img = image::RgbImage::new((4 * w) as u32, (h * shown.len()) as u32);
        for (row, (sample, [fp32, fp16, int8])) in shown.iter().enumerate() {
            if sample.shape[2] != h || sample.shape[3] != w {
                continue;
            }
            let diff: Vec<f32> = int8.iter().zip(fp32.iter()).map(|(a, b)| ((a - b).abs() * 4.0) - 1.0).collect();
            for (col, t) in [*fp32, *fp16, *int8, &diff[..]].into_iter().enumerate() {
                let plane = h * w;
                for y in 0..h {
                    for x in 0..w {
                        let px = |c: usize| ((t[c * plane + y * w + x].clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8;
                        img.put_pixel((col * w + x) as u32, (row * h + y) as u32, image::Rgb([px(0), px(1), px(2)]));
                    }
                }
            }
        }
        let mut png = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).map_err(|e| io_error(dir, e))?;
        write_atomic(&dir.join("compare.png"), &png)?;
    }
    Ok(())
}
