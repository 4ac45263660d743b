//! Our resize (cached fixed-point tables, scalar) against fast_image_resize (SIMD, weights
//! recomputed per call) on the frame sizes a camera gives, both ways: prints a Markdown table.
//! `cargo bench -p cyclegan-runtime --bench resize`
use std::time::Instant;

use cyclegan_runtime::resize::Resizer;
use fast_image_resize as fir;

fn median_ms(iters: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..iters)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[iters / 2]
}

fn main() {
    let iters = 31;
    println!("| resize (RGB) | ours ms | fast_image_resize ms | ours / theirs |");
    println!("|---|---|---|---|");
    for (from, to) in
        [((1280, 720), (456, 256)), ((456, 256), (1280, 720)), ((1920, 1080), (456, 256)), ((456, 256), (1920, 1080))]
    {
        let src: Vec<u8> = (0..from.0 * from.1 * 3).map(|i| (i * 7919 % 251) as u8).collect();
        let mut ours = Resizer::default();
        let mut out = Vec::new();
        let ours_ms = median_ms(iters, || ours.resize(&src, from, &mut out, to));

        let src_image = fir::images::ImageRef::new(from.0 as u32, from.1 as u32, &src, fir::PixelType::U8x3).unwrap();
        let mut dst = fir::images::Image::new(to.0 as u32, to.1 as u32, fir::PixelType::U8x3);
        let options = fir::ResizeOptions::new().resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::Bilinear));
        let mut theirs = fir::Resizer::new();
        let theirs_ms = median_ms(iters, || theirs.resize(&src_image, &mut dst, &options).unwrap());
        assert!(out == dst.buffer(), "{from:?} -> {to:?}: the two resizes disagree");
        println!(
            "| {}x{} -> {}x{} | {ours_ms:.2} | {theirs_ms:.2} | {:.2} |",
            from.0,
            from.1,
            to.0,
            to.1,
            ours_ms / theirs_ms
        );
    }
}
