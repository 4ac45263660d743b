//! Packed RGB <-> the frame formats. YUV follows the caps' colorimetry (matrix and range);
//! 4:2:0 chroma is averaged over each 2x2 block when writing and taken from the block when
//! reading.
use super::{FrameMut, FrameRef, PixelFormat};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum YuvMatrix {
    #[default]
    Bt601,
    Bt709,
    Bt2020,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum YuvRange {
    /// Y in 16..=235, chroma in 16..=240 (video).
    #[default]
    Limited,
    /// 0..=255 (JPEG).
    Full,
}

/// How YUV frames encode colour; ignored for RGB formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct YuvSpec {
    pub matrix: YuvMatrix,
    pub range: YuvRange,
}

struct Coefficients {
    kr: f32,
    kb: f32,
    y_offset: f32,
    y_scale: f32,
    c_scale: f32,
}

impl YuvSpec {
    fn coefficients(self) -> Coefficients {
        let (kr, kb) = match self.matrix {
            YuvMatrix::Bt601 => (0.299, 0.114),
            YuvMatrix::Bt709 => (0.2126, 0.0722),
            YuvMatrix::Bt2020 => (0.2627, 0.0593),
        };
        let (y_offset, y_scale, c_scale) = match self.range {
            YuvRange::Limited => (16.0, 255.0 / 219.0, 255.0 / 224.0),
            YuvRange::Full => (0.0, 1.0, 1.0),
        };
        Coefficients { kr, kb, y_offset, y_scale, c_scale }
    }
}

fn to_u8(v: f32) -> u8 {
    (v.clamp(0.0, 255.0) + 0.5) as u8
}

impl Coefficients {
    fn rgb(&self, y: u8, u: u8, v: u8) -> [u8; 3] {
        let kg = 1.0 - self.kr - self.kb;
        let y = (y as f32 - self.y_offset) * self.y_scale;
        let cb = (u as f32 - 128.0) * self.c_scale;
        let cr = (v as f32 - 128.0) * self.c_scale;
        let r = y + 2.0 * (1.0 - self.kr) * cr;
        let b = y + 2.0 * (1.0 - self.kb) * cb;
        let g = (y - self.kr * r - self.kb * b) / kg;
        [to_u8(r), to_u8(g), to_u8(b)]
    }

    fn luma(&self, rgb: [f32; 3]) -> f32 {
        self.kr * rgb[0] + (1.0 - self.kr - self.kb) * rgb[1] + self.kb * rgb[2]
    }

    fn y(&self, rgb: [f32; 3]) -> u8 {
        to_u8(self.luma(rgb) / self.y_scale + self.y_offset)
    }

    /// (U, V) of the mean colour of a block.
    fn uv(&self, rgb: [f32; 3]) -> (u8, u8) {
        let y = self.luma(rgb);
        let cb = (rgb[2] - y) / (2.0 * (1.0 - self.kb));
        let cr = (rgb[0] - y) / (2.0 * (1.0 - self.kr));
        (to_u8(cb / self.c_scale + 128.0), to_u8(cr / self.c_scale + 128.0))
    }
}

pub(super) fn read_rgb(frame: &FrameRef<'_>, rgb: &mut [u8], yuv: YuvSpec) {
    let (w, h) = (frame.width, frame.height);
    let c = yuv.coefficients();
    for row in 0..h {
        let out = &mut rgb[row * w * 3..(row + 1) * w * 3];
        let line = |plane: usize, r: usize| &frame.planes[plane][r * frame.strides[plane]..];
        match frame.format {
            PixelFormat::Rgb => out.copy_from_slice(&line(0, row)[..w * 3]),
            PixelFormat::Rgba => {
                for (o, i) in out.chunks_exact_mut(3).zip(line(0, row).chunks_exact(4)) {
                    o.copy_from_slice(&i[..3]);
                }
            }
            PixelFormat::Bgrx => {
                for (o, i) in out.chunks_exact_mut(3).zip(line(0, row).chunks_exact(4)) {
                    o.copy_from_slice(&[i[2], i[1], i[0]]);
                }
            }
            PixelFormat::I420 => {
                let (y, u, v) = (line(0, row), line(1, row / 2), line(2, row / 2));
                for (x, o) in out.chunks_exact_mut(3).enumerate() {
                    o.copy_from_slice(&c.rgb(y[x], u[x / 2], v[x / 2]));
                }
            }
            PixelFormat::Nv12 => {
                let (y, uv) = (line(0, row), line(1, row / 2));
                for (x, o) in out.chunks_exact_mut(3).enumerate() {
                    o.copy_from_slice(&c.rgb(y[x], uv[x / 2 * 2], uv[x / 2 * 2 + 1]));
                }
            }
        }
    }
}

pub(super) fn write_rgb(rgb: &[u8], frame: &mut FrameMut<'_>, yuv: YuvSpec) {
    let (w, h) = (frame.width, frame.height);
    assert_eq!(rgb.len(), w * h * 3, "packed RGB of the frame's size");
    let px = |x: usize, y: usize| {
        let i = (y * w + x) * 3;
        [rgb[i] as f32, rgb[i + 1] as f32, rgb[i + 2] as f32]
    };
    let c = yuv.coefficients();
    let format = frame.format;
    let strides = frame.strides;
    match format {
        PixelFormat::Rgb | PixelFormat::Rgba | PixelFormat::Bgrx => {
            for row in 0..h {
                let src = &rgb[row * w * 3..(row + 1) * w * 3];
                let dst = &mut frame.planes[0][row * strides[0]..];
                match format {
                    PixelFormat::Rgb => dst[..w * 3].copy_from_slice(src),
                    // Alpha and padding bytes are left as they were.
                    PixelFormat::Rgba => {
                        for (o, i) in dst.chunks_exact_mut(4).zip(src.chunks_exact(3)) {
                            o[..3].copy_from_slice(i);
                        }
                    }
                    _ => {
                        for (o, i) in dst.chunks_exact_mut(4).zip(src.chunks_exact(3)) {
                            o[..3].copy_from_slice(&[i[2], i[1], i[0]]);
                        }
                    }
                }
            }
        }
        PixelFormat::I420 | PixelFormat::Nv12 => {
            for row in 0..h {
                let dst = &mut frame.planes[0][row * strides[0]..];
                for (x, o) in dst[..w].iter_mut().enumerate() {
                    *o = c.y(px(x, row));
                }
            }
            for crow in 0..h.div_ceil(2) {
                for cx in 0..w.div_ceil(2) {
                    let mut sum = [0f32; 3];
                    let mut n = 0.0;
                    for y in 2 * crow..(2 * crow + 2).min(h) {
                        for x in 2 * cx..(2 * cx + 2).min(w) {
                            let p = px(x, y);
                            sum = [sum[0] + p[0], sum[1] + p[1], sum[2] + p[2]];
                            n += 1.0;
                        }
                    }
                    let (u, v) = c.uv([sum[0] / n, sum[1] / n, sum[2] / n]);
                    if format == PixelFormat::I420 {
                        frame.planes[1][crow * strides[1] + cx] = u;
                        frame.planes[2][crow * strides[2] + cx] = v;
                    } else {
                        frame.planes[1][crow * strides[1] + 2 * cx] = u;
                        frame.planes[1][crow * strides[1] + 2 * cx + 1] = v;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Frame;

    fn gradient(w: usize, h: usize) -> Vec<u8> {
        (0..h).flat_map(|y| (0..w).flat_map(move |x| [(x * 255 / w) as u8, (y * 255 / h) as u8, 128])).collect()
    }

    #[test]
    fn rgb_formats_round_trip_exactly() {
        let (w, h) = (7, 5);
        let rgb = gradient(w, h);
        for format in [PixelFormat::Rgb, PixelFormat::Rgba, PixelFormat::Bgrx] {
            let frame = Frame::from_rgb(format, w, h, &rgb, YuvSpec::default());
            let mut back = Vec::new();
            frame.as_ref().to_rgb(&mut back, YuvSpec::default());
            assert_eq!(back, rgb, "{format:?}");
        }
    }

    #[test]
    fn yuv_round_trip_of_flat_blocks_is_within_rounding() {
        // Colour constant over 2x2 blocks: 4:2:0 loses nothing but rounding.
        let (w, h) = (9, 7);
        let rgb: Vec<u8> = (0..h)
            .flat_map(|y| {
                (0..w).flat_map(move |x| [((x / 2) * 60) as u8, ((y / 2) * 70) as u8, 200 - (x / 2 * 30) as u8])
            })
            .collect();
        for matrix in [YuvMatrix::Bt601, YuvMatrix::Bt709, YuvMatrix::Bt2020] {
            for range in [YuvRange::Limited, YuvRange::Full] {
                let spec = YuvSpec { matrix, range };
                for format in [PixelFormat::I420, PixelFormat::Nv12] {
                    let frame = Frame::from_rgb(format, w, h, &rgb, spec);
                    let mut back = Vec::new();
                    frame.as_ref().to_rgb(&mut back, spec);
                    let worst = rgb.iter().zip(&back).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
                    assert!(worst <= 3, "{format:?} {spec:?}: off by {worst}");
                }
            }
        }
    }

    #[test]
    fn limited_range_black_and_white_land_on_16_and_235() {
        let spec = YuvSpec { matrix: YuvMatrix::Bt709, range: YuvRange::Limited };
        let frame = Frame::from_rgb(PixelFormat::I420, 2, 1, &[0, 0, 0, 255, 255, 255], spec);
        assert_eq!(&frame.planes[0][..2], &[16, 235]);
        assert_eq!((frame.planes[1][0], frame.planes[2][0]), (128, 128));
    }
}
