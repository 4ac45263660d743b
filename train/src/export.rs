//! `cyclegan-train export`: a checkpoint's generator as ONNX. FP32 and FP16 are
//! `cyclegan_model`'s export; INT8 is the Q/DQ model of a checkpoint of quantization-aware
//! fine-tuning, its FP32 export rewritten with the learned scales (`qat`).
use std::path::Path;

use cyclegan_model::checkpoint::{SCALES_FILE, is_qat_checkpoint};
use cyclegan_model::export::export_checkpoint;
use cyclegan_onnx::pb::ModelProto;
use cyclegan_onnx::{FloatType, Precision};

pub use cyclegan_model::export::ExportOptions;

use crate::checkpoint;
use crate::error::{Error, Result};

/// Exports one generator of a checkpoint (or run folder) as an ONNX model with metadata; INT8
/// (a Q/DQ model with the learned scales) from a checkpoint of `cyclegan-train qat` only.
pub fn export_generator(checkpoint: &Path, opts: &ExportOptions) -> Result<ModelProto> {
    if opts.precision != Precision::Int8 {
        return Ok(export_checkpoint(checkpoint, opts)?);
    }
    let dir = checkpoint::resolve(checkpoint)?;
    if !is_qat_checkpoint(&dir) {
        return Err(Error::Export(format!(
            "{} was not fine-tuned for INT8 (it has no {SCALES_FILE}): export it as fp32 and calibrate that with \
             `cyclegan-calib`, or fine-tune it with `cyclegan-train qat --checkpoint {}`",
            dir.display(),
            checkpoint.display()
        )));
    }
    if opts.io_type != FloatType::F32 {
        return Err(Error::Export("an INT8 model takes and gives fp32 images: leave --io-precision at fp32".into()));
    }
    let fp32 = export_checkpoint(&dir, &ExportOptions { precision: Precision::Fp32, ..*opts })?;
    crate::qat::quantized_export(&dir, &checkpoint::read_state(&dir)?, &fp32)
}
