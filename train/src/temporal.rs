//! Temporal consistency from still images (Eilertsen et al., CVPR 2019; ReReVST): for a random
//! smooth warp W of each image, ‖G(W(x)) − W(G(x))‖₁ over the pixels W keeps in frame. A
//! generator that satisfies it moves with its input instead of re-inventing texture every frame,
//! which is what flickers in video. The warps are drawn from the step's random stream (not
//! libtorch's), so a resumed run draws the same ones.
use rand::Rng;
use tch::{Device, Kind, Tensor};

/// How far a random warp moves an image, as the motion between two video frames might.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WarpRange {
    /// Largest shift per axis, as a share of the side.
    pub shift: f64,
    /// Largest zoom in or out (0.03: 3%).
    pub zoom: f64,
    /// Largest rotation in degrees.
    pub rotation_deg: f64,
    /// Largest local displacement, as a share of the shorter side, of a 4x4 field of random
    /// control points interpolated bilinearly (ReReVST's smooth synthetic flow).
    pub local: f64,
    /// Standard deviation of the noise added to W(x), in the networks' [-1, 1] units: 4/255 is
    /// σ = 2/255 of sensor noise on [0, 1] images, the still scene that `eval temporal` uses.
    pub noise: f64,
}

impl Default for WarpRange {
    fn default() -> Self {
        Self { shift: 0.03, zoom: 0.03, rotation_deg: 3.0, local: 0.015, noise: 4.0 / 255.0 }
    }
}

/// Control points per side of the local displacement field.
const FIELD_POINTS: usize = 4;

/// A warp of a batch: where each output pixel samples its input, and which pixels sample
/// inside the image.
pub struct Warp {
    /// (N, H, W, 2) in grid_sample's normalised coordinates (align_corners = false).
    grid: Tensor,
    /// (N, 1, H, W): 1 where the sample lies within the image's pixel centres.
    mask: Tensor,
}

impl Warp {
    /// From source positions in pixels: `sources[((i * h + y) * w + x)]` is where output pixel
    /// (x, y) of image i samples.
    fn from_sources(sources: &[[f64; 2]], n: usize, h: usize, w: usize, device: Device) -> Self {
        let mut grid = Vec::with_capacity(sources.len() * 2);
        let mut mask = Vec::with_capacity(sources.len());
        for s in sources {
            grid.push(((2.0 * s[0] + 1.0) / w as f64 - 1.0) as f32);
            grid.push(((2.0 * s[1] + 1.0) / h as f64 - 1.0) as f32);
            let inside = (0.0..=(w - 1) as f64).contains(&s[0]) && (0.0..=(h - 1) as f64).contains(&s[1]);
            mask.push(inside as u8 as f32);
        }
        let (n, h, w) = (n as i64, h as i64, w as i64);
        Self {
            grid: Tensor::from_slice(&grid).view([n, h, w, 2]).to_device(device),
            mask: Tensor::from_slice(&mask).view([n, 1, h, w]).to_device(device),
        }
    }

    /// A random smooth warp per image of an (N, C, H, W) batch: zoom and rotation about the
    /// centre, a shift, and a smooth local displacement.
    pub fn random(range: &WarpRange, shape: &[i64], device: Device, rng: &mut impl Rng) -> Self {
        let (n, h, w) = (shape[0] as usize, shape[2] as usize, shape[3] as usize);
        let (cx, cy) = ((w - 1) as f64 / 2.0, (h - 1) as f64 / 2.0);
        let mut sources = Vec::with_capacity(n * h * w);
        let mut symmetric = |limit: f64| rng.random_range(-1.0..=1.0) * limit;
        for _ in 0..n {
            let zoom = (1.0 + range.zoom).powf(symmetric(1.0));
            let angle = symmetric(range.rotation_deg).to_radians();
            let shift = [symmetric(range.shift) * w as f64, symmetric(range.shift) * h as f64];
            let amplitude = range.local * w.min(h) as f64;
            let field: Vec<[f64; 2]> =
                (0..FIELD_POINTS * FIELD_POINTS).map(|_| [symmetric(amplitude), symmetric(amplitude)]).collect();
            let (cos, sin) = (zoom * angle.cos(), zoom * angle.sin());
            for y in 0..h {
                for x in 0..w {
                    let (dx, dy) = (x as f64 - cx, y as f64 - cy);
                    let local = bilinear(&field, x as f64 / (w - 1).max(1) as f64, y as f64 / (h - 1).max(1) as f64);
                    sources.push([
                        cx + cos * dx - sin * dy + shift[0] + local[0],
                        cy + sin * dx + cos * dy + shift[1] + local[1],
                    ]);
                }
            }
        }
        Self::from_sources(&sources, n, h, w, device)
    }

    /// W(x): bilinear samples, edges replicated (they are outside the mask anyway).
    pub fn apply(&self, x: &Tensor) -> Tensor {
        let grid = self.grid.to_kind(x.kind());
        x.grid_sampler_2d(&grid, 0, 1, false)
    }

    pub fn mask(&self) -> &Tensor {
        &self.mask
    }
}

/// The field of `FIELD_POINTS`² control points at (u, v) in [0, 1]².
fn bilinear(points: &[[f64; 2]], u: f64, v: f64) -> [f64; 2] {
    let last = (FIELD_POINTS - 1) as f64;
    let (fx, fy) = (u * last, v * last);
    let (x0, y0) = ((fx.floor() as usize).min(FIELD_POINTS - 2), (fy.floor() as usize).min(FIELD_POINTS - 2));
    let (tx, ty) = (fx - x0 as f64, fy - y0 as f64);
    let at = |x: usize, y: usize| points[y * FIELD_POINTS + x];
    let mut out = [0.0; 2];
    for (k, o) in out.iter_mut().enumerate() {
        let top = at(x0, y0)[k] * (1.0 - tx) + at(x0 + 1, y0)[k] * tx;
        let bottom = at(x0, y0 + 1)[k] * (1.0 - tx) + at(x0 + 1, y0 + 1)[k] * tx;
        *o = top * (1.0 - ty) + bottom * ty;
    }
    out
}

/// Gaussian noise of standard deviation `std` shaped like `like`, from `rng`.
fn noise_like(like: &Tensor, std: f64, rng: &mut impl Rng) -> Tensor {
    let n = like.numel();
    let values: Vec<f32> = (0..n)
        .map(|_| {
            let u: f64 = 1.0 - rng.random::<f64>();
            let v: f64 = rng.random();
            (std * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
        })
        .collect();
    Tensor::from_slice(&values).view(like.size().as_slice()).to_device(like.device())
}

/// One generator's temporal term and the images of its sample row.
pub struct Consistency {
    /// The masked mean of |G(W(x)) − W(G(x))|, unweighted.
    pub loss: Tensor,
    /// x, W(x) (noise included), G(W(x)), W(G(x)).
    pub row: [Tensor; 4],
}

/// The temporal term of generator `g` on batch `x`, given `gx` = G(x) already computed (its
/// gradient flows through both sides).
pub fn consistency(
    g: impl Fn(&Tensor) -> Tensor,
    x: &Tensor,
    gx: &Tensor,
    range: &WarpRange,
    rng: &mut impl Rng,
) -> Consistency {
    let warp = Warp::random(range, &x.size(), x.device(), rng);
    let warped = if range.noise > 0.0 { warp.apply(x) + noise_like(x, range.noise, rng) } else { warp.apply(x) };
    let g_warped = g(&warped);
    let warped_g = warp.apply(gx);
    let loss = masked_l1(&g_warped, &warped_g, warp.mask());
    let detach = |t: &Tensor| t.detach().to_kind(Kind::Float);
    Consistency { loss, row: [x.shallow_clone(), detach(&warped), detach(&g_warped), detach(&warped_g)] }
}

/// Mean absolute difference over the pixels (and all channels) where `mask` is 1.
fn masked_l1(a: &Tensor, b: &Tensor, mask: &Tensor) -> Tensor {
    let diff = (a.to_kind(Kind::Float) - b.to_kind(Kind::Float)).abs() * mask;
    let channels = a.size()[1] as f64;
    diff.sum(Kind::Float) / (mask.sum(Kind::Float) * channels).clamp_min(1.0)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn ramp(n: i64, h: i64, w: i64) -> Tensor {
        Tensor::arange(n * 3 * h * w, (Kind::Float, Device::Cpu)).view([n, 3, h, w]) / (n * 3 * h * w) as f64
    }

    #[test]
    fn a_whole_pixel_shift_moves_the_image_and_masks_what_came_in() {
        let (n, h, w) = (2usize, 6usize, 8usize);
        // Each output pixel samples 3 pixels to its right and 1 below.
        let sources: Vec<[f64; 2]> = (0..n * h * w)
            .map(|i| {
                let (x, y) = ((i % w) as f64, ((i / w) % h) as f64);
                [x + 3.0, y + 1.0]
            })
            .collect();
        let warp = Warp::from_sources(&sources, n, h, w, Device::Cpu);
        let x = ramp(n as i64, h as i64, w as i64);
        let warped = warp.apply(&x);
        let (h, w) = (h as i64, w as i64);
        let expected = x.narrow(2, 1, h - 1).narrow(3, 3, w - 3);
        let got = warped.narrow(2, 0, h - 1).narrow(3, 0, w - 3);
        assert!(got.allclose(&expected, 1e-6, 1e-6, false));
        let mask = warp.mask();
        assert_eq!(mask.sum(Kind::Float).double_value(&[]), (n as i64 * (h - 1) * (w - 3)) as f64);
        assert_eq!(mask.narrow(2, 0, h - 1).narrow(3, 0, w - 3).min().double_value(&[]), 1.0);
    }

    #[test]
    fn random_warps_are_smooth_near_identity_and_repeatable() {
        let shape = [1, 3, 32, 48];
        let w1 = Warp::random(&WarpRange::default(), &shape, Device::Cpu, &mut StdRng::seed_from_u64(5));
        let w2 = Warp::random(&WarpRange::default(), &shape, Device::Cpu, &mut StdRng::seed_from_u64(5));
        assert!(w1.grid.equal(&w2.grid));
        let identity = Warp::from_sources(
            &(0..32 * 48).map(|i| [(i % 48) as f64, (i / 48) as f64]).collect::<Vec<_>>(),
            1,
            32,
            48,
            Device::Cpu,
        );
        // At most shift + zoom + rotation + local: well under a fifth of the image.
        let moved = (&w1.grid - &identity.grid).abs().max().double_value(&[]);
        assert!(moved > 0.0 && moved < 0.4, "moved {moved}");
        let kept = w1.mask.mean(Kind::Float).double_value(&[]);
        assert!(kept > 0.7, "kept {kept}");
    }

    #[test]
    fn the_loss_is_zero_for_identity_and_for_a_constant_image() {
        let range = WarpRange { noise: 0.0, ..WarpRange::default() };
        let x = ramp(2, 16, 16) * 2.0 - 1.0;
        let c = consistency(|t| t.shallow_clone(), &x, &x, &range, &mut StdRng::seed_from_u64(1));
        assert!(c.loss.double_value(&[]).abs() < 1e-7, "{}", c.loss.double_value(&[]));
        // A translation-equivariant G (here a per-pixel map) of a constant image.
        let flat = Tensor::full([1, 3, 16, 16], 0.25, (Kind::Float, Device::Cpu));
        let g = |t: &Tensor| t.tanh() * 0.5;
        let c = consistency(g, &flat, &g(&flat), &range, &mut StdRng::seed_from_u64(2));
        assert!(c.loss.double_value(&[]).abs() < 1e-7);
        // A G that ignores its input's position is penalised.
        let fixed = ramp(1, 16, 16);
        let c = consistency(|t| t.zeros_like() + &fixed, &flat, &fixed, &range, &mut StdRng::seed_from_u64(3));
        assert!(c.loss.double_value(&[]) > 1e-3);
    }
}
