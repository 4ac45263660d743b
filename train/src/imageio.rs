//! Conversions between images and tensors in [-1, 1], and atomic PNG writes.
use std::path::Path;

use image::RgbImage;
use tch::{Kind, Tensor};

use crate::data::to_chw;
use crate::error::{Error, Result};

/// `[3, H, W]` (or `[1, 3, H, W]`) in [-1, 1] to an 8-bit image, rounding to nearest.
pub fn tensor_to_rgb(t: &Tensor) -> RgbImage {
    let t = if t.dim() == 4 { t.get(0) } else { t.shallow_clone() };
    let (h, w) = (t.size()[1], t.size()[2]);
    let bytes = ((t.to_kind(Kind::Float).clamp(-1.0, 1.0) + 1.0) * 127.5)
        .round()
        .to_kind(Kind::Uint8)
        .permute([1, 2, 0])
        .contiguous()
        .to_device(tch::Device::Cpu);
    let mut data = vec![0u8; (h * w * 3) as usize];
    let len = data.len();
    bytes.copy_data_u8(&mut data, len);
    RgbImage::from_raw(w as u32, h as u32, data).expect("buffer matches the size")
}

/// An image as a `[1, 3, H, W]` tensor in [-1, 1].
pub fn rgb_to_tensor(img: &RgbImage) -> Tensor {
    let mut v = Vec::new();
    to_chw(img, &mut v);
    Tensor::from_slice(&v).reshape([1, 3, img.height() as i64, img.width() as i64])
}

/// Writes a PNG atomically (a crash leaves the old file or none).
pub fn save_png(img: &RgbImage, path: &Path) -> Result<()> {
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| Error::Image { path: path.to_path_buf(), message: format!("cannot encode: {e}") })?;
    Ok(cyclegan_onnx::io::write_atomic(path, &png)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_exactly() {
        let img = RgbImage::from_fn(5, 3, |x, y| image::Rgb([(x * 50) as u8, (y * 100) as u8, 255 - x as u8]));
        assert_eq!(tensor_to_rgb(&rgb_to_tensor(&img)), img);
    }
}
