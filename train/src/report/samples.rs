//! Sample grid: real A | fake B | reconstructed A over real B | fake A | reconstructed B.
use image::{RgbImage, imageops};

use crate::imageio::tensor_to_rgb;
use crate::trainer::Visuals;

pub fn sample_grid(v: &Visuals) -> RgbImage {
    let rows = [[&v.real_a, &v.fake_b, &v.rec_a], [&v.real_b, &v.fake_a, &v.rec_b]];
    let tiles: Vec<Vec<RgbImage>> = rows.iter().map(|r| r.iter().map(|t| tensor_to_rgb(t)).collect()).collect();
    let gap = 4;
    let cell_w = tiles.iter().flatten().map(|t| t.width()).max().unwrap_or(1);
    let cell_h = tiles.iter().flatten().map(|t| t.height()).max().unwrap_or(1);
    let mut grid = RgbImage::from_pixel(3 * cell_w + 2 * gap, 2 * cell_h + gap, image::Rgb([255, 255, 255]));
    for (r, row) in tiles.iter().enumerate() {
        for (c, tile) in row.iter().enumerate() {
            let x = c as u32 * (cell_w + gap);
            let y = r as u32 * (cell_h + gap);
            imageops::replace(&mut grid, tile, x as i64, y as i64);
        }
    }
    grid
}
