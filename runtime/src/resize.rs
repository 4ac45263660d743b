//! Bilinear resize of packed RGB (u8), antialiased when shrinking: the fixed-point convolution
//! of fast_image_resize (its `Convolution(Bilinear)` on U8x3 images, to the bit), with each
//! size pair's weights computed once and kept, so that a stream's frames allocate nothing. The
//! CUDA kernels run the same tables ([`Table`]), so the GPU path gives the CPU path's bytes.
use std::collections::HashMap;

/// One axis's weights (`input` -> `output` samples): per output index, `window + 2` ints: the
/// first input index, the number of taps, then the taps' weights scaled by 2^`precision`
/// (zero-padded to `window`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub entries: Vec<i32>,
    pub window: usize,
    pub precision: u32,
}

impl Table {
    /// The weights fast_image_resize's `precompute_coefficients` and `Normalizer16` make for a
    /// bilinear filter, in this table's layout.
    pub fn bilinear(input: usize, output: usize) -> Self {
        let scale = input as f64 / output as f64;
        // Shrinking widens the filter by the scale (antialiasing); bilinear's support is 1.
        let filter_scale = scale.max(1.0);
        let radius = filter_scale;
        let window = radius.ceil() as usize * 2 + 1;
        let recip_filter_scale = 1.0 / filter_scale;
        let mut weights: Vec<f64> = Vec::with_capacity(window * output);
        let mut bounds = Vec::with_capacity(output);
        for out_x in 0..output {
            let in_center = (out_x as f64 + 0.5) * scale;
            let x_min = (in_center - radius).floor().max(0.0) as usize;
            let x_max = (in_center + radius).ceil().min(input as f64) as usize;
            let first = weights.len();
            let center = in_center - 0.5;
            let (mut start, mut end) = (x_min, x_max);
            let mut total = 0.0;
            for x in x_min..x_max {
                let distance = ((x as f64 - center) * recip_filter_scale).abs();
                let w = if distance < 1.0 { 1.0 - distance } else { 0.0 };
                // Leading zero weights move the start instead of being stored.
                if x == start && w == 0.0 {
                    start += 1;
                } else {
                    weights.push(w);
                    total += w;
                }
            }
            for &w in weights.iter().rev() {
                if end <= start || w != 0.0 {
                    break;
                }
                end -= 1;
            }
            if total != 0.0 {
                weights[first..].iter_mut().for_each(|w| *w /= total);
            }
            weights.resize(first + window, 0.0);
            bounds.push((start, end - start));
        }
        // The most fractional bits that keep the largest weight below 2^15 (an i16), at most 21.
        let max_weight = weights.iter().copied().fold(0.0, f64::max);
        let mut precision = 0;
        for p in 0..22u32 {
            precision = p;
            if (max_weight * (1u64 << (p + 1)) as f64).round() as i64 >= 1 << 15 {
                break;
            }
        }
        let fixed = (1u64 << precision) as f64;
        let mut entries = Vec::with_capacity(output * (window + 2));
        for (chunk, &(start, size)) in weights.chunks_exact(window).zip(&bounds) {
            entries.push(start as i32);
            entries.push(size as i32);
            entries.extend(
                chunk.iter().enumerate().map(|(i, &w)| if i < size { (w * fixed).round() as i16 as i32 } else { 0 }),
            );
        }
        Self { entries, window, precision }
    }

    /// Output index `i`'s first input index and weights.
    fn taps(&self, i: usize) -> (usize, &[i32]) {
        let entry = &self.entries[i * (self.window + 2)..(i + 1) * (self.window + 2)];
        (entry[0] as usize, &entry[2..2 + entry[1] as usize])
    }

    /// A sum of weighted samples (started at [`Self::rounding`]) back to u8: fast_image_resize's
    /// `Normalizer16::clip`.
    fn clip(&self, sum: i32) -> u8 {
        (sum >> self.precision).clamp(0, 255) as u8
    }

    /// Half a unit of the fixed point: the sums start there so that the shift rounds.
    fn rounding(&self) -> i32 {
        1 << self.precision.saturating_sub(1)
    }
}

/// Resizes packed RGB frames, keeping the tables of the sizes it has seen and its scratch rows.
#[derive(Debug, Default)]
pub struct Resizer {
    tables: HashMap<(usize, usize), Table>,
    /// The vertical pass's result (input width x output height), as u8 like fast_image_resize's.
    columns: Vec<u8>,
    sums: Vec<i32>,
}

impl Resizer {
    /// `src` (packed RGB, `from` = (width, height)) -> `dst` at `to`.
    pub fn resize(&mut self, src: &[u8], from: (usize, usize), dst: &mut Vec<u8>, to: (usize, usize)) {
        dst.resize(to.0 * to.1 * 3, 0);
        if from == to {
            dst.copy_from_slice(src);
            return;
        }
        assert_eq!(src.len(), from.0 * from.1 * 3, "packed RGB of {from:?}");
        for size in [(from.0, to.0), (from.1, to.1)] {
            self.tables.entry(size).or_insert_with(|| Table::bilinear(size.0, size.1));
        }
        let (x, y) = (&self.tables[&(from.0, to.0)], &self.tables[&(from.1, to.1)]);
        // Vertical first, as fast_image_resize does for u8 images; each pass rounds to u8.
        let row = from.0 * 3;
        self.columns.resize(row * to.1, 0);
        self.sums.resize(row, 0);
        for (out_y, columns) in self.columns.chunks_exact_mut(row).enumerate() {
            let (first, weights) = y.taps(out_y);
            self.sums.fill(y.rounding());
            for (j, &w) in weights.iter().enumerate() {
                let src_row = &src[(first + j) * row..(first + j + 1) * row];
                self.sums.iter_mut().zip(src_row).for_each(|(s, &v)| *s += v as i32 * w);
            }
            columns.iter_mut().zip(&self.sums).for_each(|(c, &s)| *c = y.clip(s));
        }
        for (columns, out_row) in self.columns.chunks_exact(row).zip(dst.chunks_exact_mut(to.0 * 3)) {
            for (out_x, pixel) in out_row.chunks_exact_mut(3).enumerate() {
                let (first, weights) = x.taps(out_x);
                let mut sum = [x.rounding(); 3];
                let taps = &columns[first * 3..(first + weights.len()) * 3];
                for (px, &w) in taps.chunks_exact(3).zip(weights) {
                    sum[0] += px[0] as i32 * w;
                    sum[1] += px[1] as i32 * w;
                    sum[2] += px[2] as i32 * w;
                }
                pixel.copy_from_slice(&sum.map(|s| x.clip(s)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fast_image_resize as fir;

    fn reference(src: &[u8], from: (usize, usize), to: (usize, usize)) -> Vec<u8> {
        let src = fir::images::ImageRef::new(from.0 as u32, from.1 as u32, src, fir::PixelType::U8x3).unwrap();
        let mut dst = fir::images::Image::new(to.0 as u32, to.1 as u32, fir::PixelType::U8x3);
        let options = fir::ResizeOptions::new().resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::Bilinear));
        fir::Resizer::new().resize(&src, &mut dst, &options).unwrap();
        dst.into_vec()
    }

    #[test]
    fn gives_fast_image_resize_bilinear_bytes() {
        let sizes = [
            ((1280, 720), (456, 256)),
            ((456, 256), (1280, 720)),
            ((90, 60), (72, 48)),
            ((37, 23), (64, 64)),
            ((64, 40), (64, 20)),
            ((40, 64), (13, 64)),
            ((7, 5), (1, 1)),
            ((1, 1), (8, 4)),
            ((300, 200), (299, 201)),
        ];
        let mut ours = Resizer::default();
        let mut out = Vec::new();
        for (from, to) in sizes {
            let src: Vec<u8> = (0..from.0 * from.1 * 3).map(|i| ((i * 7919) % 251 + (i / 97) % 5) as u8).collect();
            ours.resize(&src, from, &mut out, to);
            assert!(out == reference(&src, from, to), "{from:?} -> {to:?}");
        }
    }

    #[test]
    fn identity_axes_are_exact() {
        let table = Table::bilinear(17, 17);
        for i in 0..17 {
            let (first, weights) = table.taps(i);
            assert_eq!((first, weights), (i, &[1 << table.precision][..]));
        }
    }
}
