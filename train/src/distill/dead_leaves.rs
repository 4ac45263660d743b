//! Dead-leaves images: discs of random colours and sizes stacked as falling leaves, the nearer
//! hiding the farther. With radii drawn from a power law (density ~ r^-3) they have the scale
//! invariance, flat regions and sharp occluding edges of natural photos (Lee, Mumford and Huang
//! 2001), and image-to-image networks trained on them come close to those trained on photos
//! (Achddou et al. 2021). For distillation they show the teacher shapes and colours of every
//! kind, whatever the dataset lacks; no file is read and every draw comes from the step's stream.
use rand::Rng;
use rand::rngs::StdRng;
use tch::Tensor;

/// The smallest and largest radius, as shares of the image's shorter side.
const RADIUS_RANGE: (f64, f64) = (0.01, 0.5);
/// Enough discs to hide the background nearly everywhere at any size we train at; pixels still
/// uncovered keep the background's colour.
const MAX_DISCS: usize = 20_000;

/// A dead-leaves image of `h` x `w` as [1, 3, h, w] in [-1, 1] (on the CPU, as f32).
pub fn dead_leaves(h: i64, w: i64, rng: &mut StdRng) -> Tensor {
    let (hu, wu) = (h as usize, w as usize);
    let side = h.min(w) as f64;
    let (r_min, r_max) = ((RADIUS_RANGE.0 * side).max(1.0), RADIUS_RANGE.1 * side);
    let mut pixels = vec![0f32; 3 * hu * wu];
    let mut covered = vec![false; hu * wu];
    let mut left = hu * wu;
    // Front to back: each disc paints only what the nearer ones left open.
    for _ in 0..MAX_DISCS {
        if left == 0 {
            break;
        }
        // Inverse CDF of p(r) ~ r^-3 on [r_min, r_max].
        let u: f64 = rng.random();
        let r = (r_min.powi(-2) + u * (r_max.powi(-2) - r_min.powi(-2))).powf(-0.5);
        let (cy, cx) = (rng.random_range(0.0..h as f64), rng.random_range(0.0..w as f64));
        let colour: [f32; 3] = std::array::from_fn(|_| rng.random_range(-1.0..=1.0));
        let y0 = (cy - r).floor().max(0.0) as usize;
        let y1 = ((cy + r).ceil() as usize).min(hu);
        let x0 = (cx - r).floor().max(0.0) as usize;
        let x1 = ((cx + r).ceil() as usize).min(wu);
        for y in y0..y1 {
            for x in x0..x1 {
                let (dy, dx) = (y as f64 + 0.5 - cy, x as f64 + 0.5 - cx);
                let i = y * wu + x;
                if !covered[i] && dy * dy + dx * dx <= r * r {
                    covered[i] = true;
                    left -= 1;
                    for (c, v) in colour.iter().enumerate() {
                        pixels[c * hu * wu + i] = *v;
                    }
                }
            }
        }
    }
    if left > 0 {
        let background: [f32; 3] = std::array::from_fn(|_| rng.random_range(-1.0..=1.0));
        for (i, _) in covered.iter().enumerate().filter(|(_, c)| !**c) {
            for (c, v) in background.iter().enumerate() {
                pixels[c * hu * wu + i] = *v;
            }
        }
    }
    Tensor::from_slice(&pixels).view([1, 3, h, w])
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use tch::Kind;

    use super::*;

    #[test]
    fn leaves_cover_the_image_with_flat_discs_of_many_sizes_and_every_hue() {
        let image = dead_leaves(96, 128, &mut StdRng::seed_from_u64(4));
        assert_eq!(image.size(), [1, 3, 96, 128]);
        assert!(image.min().double_value(&[]) >= -1.0 && image.max().double_value(&[]) <= 1.0);
        assert!(image.equal(&dead_leaves(96, 128, &mut StdRng::seed_from_u64(4))), "not repeatable");
        assert!(!image.equal(&dead_leaves(96, 128, &mut StdRng::seed_from_u64(5))));

        let rgb: Vec<[i64; 3]> = {
            let t = ((image.squeeze_dim(0).permute([1, 2, 0]) + 1.0) * 127.5).round().to_kind(Kind::Int64);
            Vec::<i64>::try_from(t.flatten(0, -1)).unwrap().chunks(3).map(|c| [c[0], c[1], c[2]]).collect()
        };
        // Flat regions: most pixels share their right neighbour's colour.
        let same = rgb.chunks(128).flat_map(|row| row.windows(2).map(|p| p[0] == p[1])).filter(|&s| s).count();
        assert!(same as f64 > 0.6 * (96 * 127) as f64, "{same} flat neighbours");
        // Many discs, large and small: many colours, one of them covering a large share.
        let mut counts = std::collections::HashMap::new();
        for p in &rgb {
            *counts.entry(*p).or_insert(0usize) += 1;
        }
        assert!(counts.len() > 50, "{} colours", counts.len());
        assert!(counts.values().any(|&n| n > 96 * 128 / 50), "no large disc");
        assert!(counts.values().any(|&n| n < 20), "no small disc");
        // Colours of every hue: each sixth of the hue circle occurs.
        let mut sextants = [false; 6];
        for [r, g, b] in rgb {
            let (max, min) = (r.max(g).max(b), r.min(g).min(b));
            if max - min > 60 {
                let hue =
                    (f64::atan2(3f64.sqrt() * (g - b) as f64, (2 * r - g - b) as f64).to_degrees() + 360.0) % 360.0;
                sextants[(hue / 60.0) as usize % 6] = true;
            }
        }
        assert!(sextants.iter().all(|&s| s), "{sextants:?}");
    }
}
