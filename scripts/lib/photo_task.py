"""A real-photo translation task anyone can make offline, for the distillation benchmark
(scripts/bench-distill-photos.sh): the colour photos bundled with scikit-image and
scikit-learn, and a colour-and-texture mapping of our own ("cold": orange and yellow turned
violet, the other colours cooler and brighter, detail sharpened) as the target domain. The
mapping depends on the colour: a student that never saw orange cannot guess what becomes of it.

    python photo_task.py OUT

writes OUT/teacher/{trainA,trainB} (unpaired 128x128 crops of every training photo: the
teacher's data), OUT/distill/trainA (those of the crops with next to no orange: what the
students are distilled on), and two held-out sets of 192x192 crops with their mapped
images as testA/testB: OUT/in-range (a photo like the distillation set's) and OUT/out-of-range
(photos with much orange, which the distillation set lacks). No photo of a test
set is in any training set. Deterministic (a fixed seed).
"""

import os
import sys

import numpy as np
from PIL import Image, ImageFilter
from skimage import data as skdata
from sklearn.datasets import load_sample_images

CROP = 128
# The distillation set: training crops with less orange than this (the held-out orange photos
# have 17% and 31%).
MAX_ORANGE = 0.005
TEST_CROP = 192
CROPS_PER_PHOTO = 40
TEST_CROPS_PER_PHOTO = 4
SHORT_SIDE = 256

# Held out of all training: a photo like the distillation set's, and two whose warm colours it lacks.
IN_RANGE = ["rocket"]
OUT_OF_RANGE = ["flower", "chelsea"]


def photos():
    """Name -> RGB uint8 array of every colour photo bundled with the two libraries."""
    found = {}
    for name in ["astronaut", "chelsea", "coffee", "hubble_deep_field", "immunohistochemistry", "retina", "rocket"]:
        found[name] = getattr(skdata, name)()
    for name, fn in [("motorcycle_left", "motorcycle_left.png"), ("motorcycle_right", "motorcycle_right.png")]:
        path = os.path.join(os.path.dirname(skdata.__file__), fn)
        found[name] = np.asarray(Image.open(path).convert("RGB"))
    sample = load_sample_images()
    for fn, img in zip(sample.filenames, sample.images):
        found[os.path.splitext(os.path.basename(fn))[0]] = img
    return {k: v[..., :3].astype(np.uint8) for k, v in found.items()}


def resized(img):
    """The photo with its shorter side SHORT_SIDE."""
    pil = Image.fromarray(img)
    w, h = pil.size
    s = SHORT_SIDE / min(w, h)
    return pil.resize((max(SHORT_SIDE, round(w * s)), max(SHORT_SIDE, round(h * s))), Image.BICUBIC)


def crops(pil, n, size, rng):
    w, h = pil.size
    for _ in range(n):
        x, y = rng.integers(0, w - size + 1), rng.integers(0, h - size + 1)
        yield pil.crop((x, y, x + size, y + size))


def orange_share(img):
    """Share of the pixels that are orange to yellow (hue 10-60 degrees), saturated and not dark."""
    hsv = np.asarray(Image.fromarray(img).convert("HSV")).astype(np.float32) / 255.0
    hue, sat, value = hsv[..., 0] * 360.0, hsv[..., 1], hsv[..., 2]
    return float(np.mean((hue >= 10) & (hue <= 60) & (sat > 0.5) & (value > 0.3)))


def smoothstep(x, lo, hi):
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def violet_oranges(x):
    """Orange to yellow hues (10-60 degrees) of saturated pixels turned violet, smoothly: the hue
    moves by up to 240 degrees inside that range and not at all outside it; grays stay."""
    hsv = np.asarray(Image.fromarray((x * 255).round().astype(np.uint8)).convert("HSV")).astype(np.float32) / 255.0
    hue = hsv[..., 0] * 360.0
    bump = smoothstep(hue, 0.0, 15.0) * (1.0 - smoothstep(hue, 55.0, 70.0))
    weight = bump * smoothstep(hsv[..., 1], 0.15, 0.45)
    hsv[..., 0] = ((hue + 240.0 * weight) % 360.0) / 360.0
    rgb = Image.fromarray((np.clip(hsv, 0, 1) * 255).round().astype(np.uint8), "HSV").convert("RGB")
    return np.asarray(rgb).astype(np.float32) / 255.0


def cold(pil):
    """The target domain: orange and yellow turned violet, then a cold, brighter, less saturated
    palette with sharpened detail."""
    x = violet_oranges(np.asarray(pil).astype(np.float32) / 255.0)
    luma = x @ np.array([0.299, 0.587, 0.114], np.float32)
    tinted = 0.55 * luma[..., None] * np.array([0.82, 0.94, 1.18], np.float32) + 0.45 * x * np.array(
        [0.75, 0.9, 1.05], np.float32
    )
    bright = np.clip(tinted, 0, 1) ** 0.8
    blur = np.asarray(Image.fromarray((bright * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(2)))
    sharp = bright + 0.8 * (bright - blur.astype(np.float32) / 255.0)
    return Image.fromarray((np.clip(sharp, 0, 1) * 255).round().astype(np.uint8))


def save(pil, folder, i):
    os.makedirs(folder, exist_ok=True)
    pil.save(os.path.join(folder, f"{i:05d}.png"))


def main(out):
    rng = np.random.default_rng(2022)
    all_photos = photos()
    held_out = set(IN_RANGE + OUT_OF_RANGE)
    training = {k: v for k, v in sorted(all_photos.items()) if k not in held_out}
    shares = {k: orange_share(v) for k, v in training.items()}
    counts = {"teacher A": 0, "teacher B": 0, "distill A": 0}
    narrow = set()
    for name, img in training.items():
        pil = resized(img)
        for crop in crops(pil, CROPS_PER_PHOTO, CROP, rng):
            save(crop, f"{out}/teacher/trainA", counts["teacher A"])
            counts["teacher A"] += 1
            if orange_share(np.asarray(crop)) < MAX_ORANGE:
                save(crop, f"{out}/distill/trainA", counts["distill A"])
                counts["distill A"] += 1
                narrow.add(name)
        # Unpaired: the target domain from other crops of the same photos.
        for crop in crops(pil, CROPS_PER_PHOTO, CROP, rng):
            save(cold(crop), f"{out}/teacher/trainB", counts["teacher B"])
            counts["teacher B"] += 1
    for split, names in [("in-range", IN_RANGE), ("out-of-range", OUT_OF_RANGE)]:
        i = 0
        for name in names:
            for crop in crops(resized(all_photos[name]), TEST_CROPS_PER_PHOTO, TEST_CROP, rng):
                save(crop, f"{out}/{split}/testA", i)
                save(cold(crop), f"{out}/{split}/testB", i)
                i += 1
    print(f"teacher: {counts['teacher A']} + {counts['teacher B']} crops of {len(training)} photos")
    print(f"distillation set: {counts['distill A']} crops of {', '.join(sorted(narrow))} (orange < {MAX_ORANGE})")
    for k in sorted(shares):
        print(f"  {k}: orange {shares[k]:.3f}")
    held = {k: orange_share(all_photos[k]) for k in sorted(held_out)}
    print("held out: " + ", ".join(f"{k} {v:.3f}" for k, v in held.items()))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: photo_task.py OUT")
    main(sys.argv[1])
