//! Loss curves as a PNG. Text needs a TrueType font: a system DejaVu/Liberation font is used
//! (Debian: fonts-dejavu-core); without one the curves are skipped with a warning.
use std::path::Path;
use std::sync::OnceLock;

use image::RgbImage;
use plotters::prelude::*;

use super::LossRow;
use crate::error::{Error, Result};
use crate::imageio::save_png;

const FONT_FILES: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

fn font_registered() -> bool {
    static FONT: OnceLock<bool> = OnceLock::new();
    *FONT.get_or_init(|| {
        let Some(bytes) = FONT_FILES.iter().find_map(|f| std::fs::read(f).ok()) else {
            eprintln!("warning: no TrueType font found ({}); loss curves are not drawn", FONT_FILES[0]);
            return false;
        };
        // Registered once per process and used until exit.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
    })
}

/// Draws every loss (`names`, in the rows' order) against the iteration into `path` under
/// `title`; false when no font is available.
pub fn plot_losses(title: &str, names: &[&str], rows: &[LossRow], path: &Path) -> Result<bool> {
    if rows.is_empty() || !font_registered() {
        return Ok(false);
    }
    let (w, h) = (1200u32, 700u32);
    let mut buf = vec![0u8; (w * h * 3) as usize];
    draw(title, names, rows, &mut buf, (w, h))
        .map_err(|e| Error::Image { path: path.into(), message: e.to_string() })?;
    let img = RgbImage::from_raw(w, h, buf).expect("buffer matches the size");
    save_png(&img, path)?;
    Ok(true)
}

fn draw(
    title: &str,
    names: &[&str],
    rows: &[LossRow],
    buf: &mut [u8],
    size: (u32, u32),
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::with_buffer(buf, size).into_drawing_area();
    root.fill(&WHITE)?;
    let x_max = rows.last().map_or(1, |r| r.iteration).max(1);
    let y_max =
        rows.iter().flat_map(|r| r.losses.iter().copied()).filter(|v| v.is_finite()).fold(0.1f64, f64::max) * 1.05;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 28))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0u64..x_max, 0f64..y_max)?;
    chart.configure_mesh().x_desc("iteration").y_desc("loss").label_style(("sans-serif", 16)).draw()?;
    for (i, name) in names.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let points = rows.iter().map(|r| (r.iteration, r.losses[i]));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_png_when_a_font_exists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curves.png");
        let rows: Vec<LossRow> = (1..50)
            .map(|i| LossRow { iteration: i, epoch: 1, lr: 2e-4, losses: vec![1.0 / i as f64; 2], images_per_s: 1.0 })
            .collect();
        if plot_losses("losses", &["a", "b"], &rows, &path).unwrap() {
            let img = image::open(&path).unwrap().to_rgb8();
            assert_eq!(img.dimensions(), (1200, 700));
            assert!(img.pixels().any(|p| p.0 != [255, 255, 255]));
        } else {
            assert!(FONT_FILES.iter().all(|f| !Path::new(f).exists()));
        }
    }
}
