//! Sample grid: rows of images side by side (CycleGAN: real A | fake B | reconstructed A over
//! real B | fake A | reconstructed B; distillation: input | teacher | student; with the temporal
//! term a row per generator of x | W(x) | G(W(x)) | W(G(x))).
use image::{RgbImage, imageops};
use tch::Tensor;

use crate::imageio::tensor_to_rgb;

pub fn sample_grid(rows: &[Vec<Tensor>]) -> RgbImage {
    let tiles: Vec<Vec<RgbImage>> = rows.iter().map(|r| r.iter().map(tensor_to_rgb).collect()).collect();
    let gap = 4;
    let cell_w = tiles.iter().flatten().map(|t| t.width()).max().unwrap_or(1);
    let cell_h = tiles.iter().flatten().map(|t| t.height()).max().unwrap_or(1);
    let cols = tiles.iter().map(Vec::len).max().unwrap_or(1) as u32;
    let (w, h) = (cols * cell_w + (cols - 1) * gap, tiles.len() as u32 * (cell_h + gap) - gap);
    let mut grid = RgbImage::from_pixel(w, h, image::Rgb([255, 255, 255]));
    for (r, row) in tiles.iter().enumerate() {
        for (c, tile) in row.iter().enumerate() {
            let x = c as u32 * (cell_w + gap);
            let y = r as u32 * (cell_h + gap);
            imageops::replace(&mut grid, tile, x as i64, y as i64);
        }
    }
    grid
}
