//! Packed RGB frames <-> the generator's input/output tensors: resize to the inference size
//! ([`crate::resize`]), normalise to [-1,1] in NCHW order, and back, with an optional blend
//! with the original frame. The calibration tool feeds its images through the same code.
use std::fmt;
use std::str::FromStr;

use crate::resize::Resizer;
use crate::size::Size;
use crate::{Error, Result};

/// How large the generator's input is, given a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InferenceSize {
    /// The shorter side becomes the model's training resolution (from its metadata).
    #[default]
    Auto,
    /// The shorter side becomes this many pixels; the aspect ratio is kept.
    Short(u32),
    /// Exactly W x H (both multiples of 4), whatever the frame's aspect ratio.
    Exact(u32, u32),
}

impl FromStr for InferenceSize {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::Invalid(format!(
                "inference size {s:?}: use `auto`, a shorter side like `256`, or `WxH` like `320x180` (multiples of 4)"
            ))
        };
        let side = |n: u32| (4..=8192).contains(&n);
        match s.trim() {
            "auto" | "" => Ok(Self::Auto),
            t if t.contains(['x', 'X']) => match t.parse::<Size>() {
                Ok(size) if side(size.width) && side(size.height) && size.fits_the_generator() => {
                    Ok(Self::Exact(size.width, size.height))
                }
                _ => Err(bad()),
            },
            t => t.parse().ok().filter(|&n| side(n)).map(Self::Short).ok_or_else(bad),
        }
    }
}

impl fmt::Display for InferenceSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => write!(f, "auto"),
            Self::Short(n) => write!(f, "{n}"),
            Self::Exact(w, h) => write!(f, "{w}x{h}"),
        }
    }
}

impl InferenceSize {
    /// (width, height) of the tensor for a frame: multiples of 4, as the generator's two
    /// stride-2 convolutions need.
    pub fn resolve(self, frame_width: usize, frame_height: usize, training_resolution: u32) -> (usize, usize) {
        let short = match self {
            Self::Exact(w, h) => return (w as usize, h as usize),
            Self::Auto => training_resolution.max(4) as f64,
            Self::Short(n) => n as f64,
        };
        let scale = short / frame_width.min(frame_height).max(1) as f64;
        let side = |v: usize| (((v as f64 * scale) / 4.0).round() as usize).max(1) * 4;
        (side(frame_width), side(frame_height))
    }
}

/// Reusable buffers and resizer for one stream.
#[derive(Debug, Default)]
pub struct Preprocessor {
    resizer: Resizer,
    small: Vec<u8>,
    large: Vec<u8>,
}

impl Preprocessor {
    /// `rgb` (packed, `frame` = (width, height)) -> `tensor` `[1,3,H,W]` in [-1,1] at `size`.
    pub fn to_tensor(&mut self, rgb: &[u8], frame: (usize, usize), size: (usize, usize), tensor: &mut Vec<f32>) {
        self.resizer.resize(rgb, frame, &mut self.small, size);
        let plane = size.0 * size.1;
        tensor.resize(3 * plane, 0.0);
        let (r, rest) = tensor.split_at_mut(plane);
        let (g, b) = rest.split_at_mut(plane);
        for (i, px) in self.small.chunks_exact(3).enumerate() {
            r[i] = px[0] as f32 / 127.5 - 1.0;
            g[i] = px[1] as f32 / 127.5 - 1.0;
            b[i] = px[2] as f32 / 127.5 - 1.0;
        }
    }

    /// `tensor` `[1,3,H,W]` at `size` -> packed RGB at `frame` size in `out`, mixed with
    /// `original` (same size): `strength` 1 is the translation alone, 0 the original.
    pub fn from_tensor(
        &mut self,
        tensor: &[f32],
        size: (usize, usize),
        frame: (usize, usize),
        original: &[u8],
        strength: f32,
        out: &mut Vec<u8>,
    ) {
        let plane = size.0 * size.1;
        self.small.resize(plane * 3, 0);
        // +0.5 and truncation: rounding without a libm call per value.
        let to_u8 = |v: f32| (((v + 1.0) * 127.5).clamp(0.0, 255.0) + 0.5) as u8;
        for (i, px) in self.small.chunks_exact_mut(3).enumerate() {
            px[0] = to_u8(tensor[i]);
            px[1] = to_u8(tensor[plane + i]);
            px[2] = to_u8(tensor[2 * plane + i]);
        }
        self.resizer.resize(&self.small, size, &mut self.large, frame);
        out.resize(self.large.len(), 0);
        if strength >= 1.0 {
            out.copy_from_slice(&self.large);
        } else {
            let s = strength.max(0.0);
            for ((o, t), a) in out.iter_mut().zip(&self.large).zip(original) {
                *o = (s * *t as f32 + (1.0 - s) * *a as f32).round() as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_resolve_to_multiples_of_four() {
        assert_eq!("auto".parse::<InferenceSize>().unwrap(), InferenceSize::Auto);
        assert_eq!("256".parse::<InferenceSize>().unwrap(), InferenceSize::Short(256));
        assert!("320x182".parse::<InferenceSize>().unwrap_err().to_string().contains("multiples of 4"));
        assert_eq!("320x184".parse::<InferenceSize>().unwrap(), InferenceSize::Exact(320, 184));
        for bad in ["0", "-3", "abc", "12x", "x12", "99999"] {
            assert!(bad.parse::<InferenceSize>().is_err(), "{bad}");
        }
        // 1280x720 with a 256 shorter side: 455.1 -> 456 (multiple of 4), 256.
        assert_eq!(InferenceSize::Short(256).resolve(1280, 720, 0), (456, 256));
        assert_eq!(InferenceSize::Auto.resolve(161, 121, 128), (172, 128));
        assert_eq!(InferenceSize::Exact(64, 32).resolve(1920, 1080, 256), (64, 32));
        assert_eq!(InferenceSize::Short(4).resolve(1000, 1, 0), (4000, 4));
    }

    #[test]
    fn tensor_round_trip_is_lossless_at_the_same_size_and_blends() {
        let (w, h) = (6, 4);
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 256) as u8).collect();
        let mut pre = Preprocessor::default();
        let mut tensor = Vec::new();
        pre.to_tensor(&rgb, (w, h), (w, h), &mut tensor);
        assert_eq!(tensor.len(), 3 * w * h);
        // Planar: the first plane is red.
        assert_eq!(tensor[1], rgb[3] as f32 / 127.5 - 1.0);
        assert!(tensor.iter().all(|v| (-1.0..=1.0).contains(v)));
        let mut out = Vec::new();
        pre.from_tensor(&tensor, (w, h), (w, h), &rgb, 1.0, &mut out);
        assert_eq!(out, rgb);
        let black = vec![-1.0f32; 3 * w * h];
        pre.from_tensor(&black, (w, h), (w, h), &rgb, 0.25, &mut out);
        for (o, a) in out.iter().zip(&rgb) {
            assert_eq!(*o, (0.75 * *a as f32).round() as u8);
        }
    }

    #[test]
    fn shrinking_averages_instead_of_skipping_pixels() {
        // A 1-pixel checkerboard shrunk 2x is mid-grey, not black or white.
        let (w, h) = (8, 8);
        let rgb: Vec<u8> = (0..w * h).flat_map(|i| if (i % w + i / w) % 2 == 0 { [255; 3] } else { [0; 3] }).collect();
        let mut tensor = Vec::new();
        Preprocessor::default().to_tensor(&rgb, (w, h), (4, 4), &mut tensor);
        assert!(tensor.iter().all(|v| v.abs() < 0.1), "{tensor:?}");
    }
}
