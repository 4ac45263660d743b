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
    /// The residual stream a convolution's Pad reads, quantized with the same scale.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pad_input: Option<String>,
    pub amax: f32,
    pub threshold: f32,
    pub scale: f32,
    /// Signal-to-quantization-noise ratio of the activation at this threshold, from its
    /// histogram (E[x²] over the expected squared quantize-dequantize error).
    pub sqnr_db: f64,
    /// Multiply-accumulates at the held-out size (0 for an Add).
    pub macs: u64,
    /// PSNR vs FP32 with only this layer quantized (the sensitivity pass).
    pub alone_psnr_db: Option<f64>,
    /// Left in floating point.
    pub kept_fp: bool,
}

/// One step of the sensitivity search: a layer put into float and what the model then measures.
#[derive(Debug, Clone, Serialize)]
pub struct SearchStep {
    pub kept_fp: String,
    pub psnr_db: f64,
    pub int8_mac_share: f64,
}

/// Seconds each step took.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    /// Decoding and preprocessing the images.
    pub load_s: f64,
    /// The two passes collecting activation histograms.
    pub observe_s: f64,
    /// Thresholds from the histograms.
    pub scales_s: f64,
    /// The FP32, FP16, all-INT8 and written models on the held-out images.
    pub evaluate_s: f64,
    /// The `--target-psnr` search (0 without it).
    pub sensitivity_s: f64,
    /// The output-aware refinement of the thresholds (0 without it).
    pub refine_s: f64,
    /// The Q/DQ rewrite of the written model and writing the files.
    pub rewrite_s: f64,
    pub total_s: f64,
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
    /// Its share of the convolution MACs in INT8 (below 1 with convolutions TensorRT has no INT8
    /// kernel for).
    pub int8_all_mac_share: f64,
    /// Convolutions left in float because TensorRT has no INT8 kernel for them.
    pub no_int8_kernel: Vec<String>,
    /// What was written (`--keep-fp` / `--target-psnr` layers in floating point).
    pub int8: Quality,
    pub target_psnr_db: Option<f64>,
    /// Residual Adds left in float (`--float-residual`).
    pub float_residual: bool,
    /// Every layer in float in the written model (`--keep-fp`, `--float-residual`, the search).
    pub kept_fp: Vec<String>,
    /// Conv and ConvTranspose MACs at the held-out size, and the share of them the written model
    /// runs in INT8.
    pub conv_macs: u64,
    pub int8_mac_share: f64,
    /// The sensitivity search, step by step (empty without `--target-psnr`).
    pub search: Vec<SearchStep>,
    pub timings: Timings,
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
        let residual = if self.float_residual { ", residual Adds in float" } else { "" };
        out.push_str("| variant vs FP32 | PSNR (dB) | SSIM | INT8 share of conv MACs |\n|---|---|---|---|\n");
        out.push_str(&format!("| FP16 graph | {:.2} | {:.4} | 0 % |\n", self.fp16.psnr_db, self.fp16.ssim));
        out.push_str(&format!(
            "| INT8, all layers{residual} | {:.2} | {:.4} | {:.1} % |\n",
            self.int8_all.psnr_db,
            self.int8_all.ssim,
            100.0 * self.int8_all_mac_share
        ));
        out.push_str(&format!(
            "| INT8 written ({} of {} layers in float) | {:.2} | {:.4} | {:.1} % |\n",
            self.kept_fp.len(),
            self.layers.len(),
            self.int8.psnr_db,
            self.int8.ssim,
            100.0 * self.int8_mac_share
        ));
        if !self.no_int8_kernel.is_empty() {
            out.push_str(&format!(
                "\nIn float in every variant (TensorRT has no INT8 kernel for their channel counts): {}\n",
                self.no_int8_kernel.join(", ")
            ));
        }
        if !self.search.is_empty() {
            out.push_str(
                "\n| sensitivity search: put in float | PSNR (dB) | INT8 share of conv MACs |\n|---|---|---|\n",
            );
            for s in &self.search {
                out.push_str(&format!("| {} | {:.2} | {:.1} % |\n", s.kept_fp, s.psnr_db, 100.0 * s.int8_mac_share));
            }
        }
        let t = &self.timings;
        out.push_str(&format!(
            "\n| step | load | observe | scales | refine | evaluate | sensitivity | rewrite | total |\n\
             |---|---|---|---|---|---|---|---|---|\n\
             | seconds | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
            t.load_s, t.observe_s, t.scales_s, t.refine_s, t.evaluate_s, t.sensitivity_s, t.rewrite_s, t.total_s
        ));
        out.push_str(
            "\n| layer | op | MMAC | threshold | scale | SQNR (dB) | PSNR quantized alone (dB) | kept float |\n\
             |---|---|---|---|---|---|---|---|\n",
        );
        for l in &self.layers {
            out.push_str(&format!(
                "| {} | {} | {:.1} | {:.4} | {:.3e} | {:.1} | {} | {} |\n",
                l.name,
                l.op,
                l.macs as f64 / 1e6,
                l.threshold,
                l.scale,
                l.sqnr_db,
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

/// [`cyclegan_onnx::io::write_atomic`], failing as a report file does.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    cyclegan_onnx::io::write_atomic(path, bytes).map_err(|e| io_error(path, e))
}

/// The report's file of held-out input tensors, and of calibration inputs (`--save-inputs`).
pub const HELD_OUT_INPUTS: &str = "heldout.safetensors";
pub const CALIBRATION_INPUTS: &str = "calibration.safetensors";

/// `samples`' input tensors as safetensors (`input_000`, `input_001`, ..., float32 `[1,3,H,W]`).
pub fn write_inputs(path: &Path, samples: &[Sample]) -> Result<()> {
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
    let data = safetensors::serialize(tensors, None).map_err(|e| io_error(path, e))?;
    write_atomic(path, &data)
}

/// `report.json`, `report.md`, `compare.png` (FP32 | FP16 | INT8 | |INT8 - FP32| x 4 for up to
/// four held-out images) and `heldout.safetensors` (their input tensors) in `dir`.
pub fn write(dir: &Path, report: &Report, samples: &[Sample], rows: &[[&[f32]; 3]]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    let json = serde_json::to_vec_pretty(report).expect("plain data");
    write_atomic(&dir.join("report.json"), &json)?;
    write_atomic(&dir.join("report.md"), report.table().as_bytes())?;

    write_inputs(&dir.join(HELD_OUT_INPUTS), samples)?;

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
