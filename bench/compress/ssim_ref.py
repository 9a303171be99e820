#!/usr/bin/python3
"""External reference SSIM for imgd's bench: scikit-image's structural_similarity.

Usage: ssim_ref.py REF TEST [REF TEST ...]   (one line per pair on stdout)

Each line: "<ssim linear luma> <ssim gamma luma>". Linear luma is what
internal/ssim measures (Y = 0.2126 R + 0.7152 G + 0.0722 B of linear-light
sRGB, 0..1); gamma luma is the common way SSIM is reported (Rec. 601 Y' of
the sRGB values, 0..255). Both at full resolution, Gaussian window sigma 1.5,
population covariances. Images with alpha are composited over black and over
white and the lower score counts, as in internal/ssim.
"""
import sys

import numpy as np
from PIL import Image
from skimage.metrics import structural_similarity


def planes(path):
    im = Image.open(path)
    im.load()
    if im.mode in ("I;16", "I;16B", "I"):
        a = np.asarray(im, dtype=np.float64) / 257.0
        rgb, alpha = np.stack([a, a, a], axis=-1), None
    else:
        has_alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
        im = im.convert("RGBA" if has_alpha else "RGB")
        a = np.asarray(im, dtype=np.float64)
        rgb = a[..., :3]
        alpha = a[..., 3] / 255.0 if has_alpha else None
    v = rgb / 255.0
    lin = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    ylin = 0.2126 * lin[..., 0] + 0.7152 * lin[..., 1] + 0.0722 * lin[..., 2]
    ygam = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    if alpha is None:
        return [(ylin, ygam)]
    return [(ylin * alpha, ygam * alpha), (ylin * alpha + 1 - alpha, ygam * alpha + 255 * (1 - alpha))]


def ssim(a, b, data_range):
    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, data_range=data_range)


def main(args):
    if len(args) == 0 or len(args) % 2:
        sys.exit(__doc__)
    for ref, test in zip(args[::2], args[1::2]):
        pr, pt = planes(ref), planes(test)
        n = max(len(pr), len(pt))
        lin = min(ssim(pr[min(i, len(pr) - 1)][0], pt[min(i, len(pt) - 1)][0], 1.0) for i in range(n))
        gam = min(ssim(pr[min(i, len(pr) - 1)][1], pt[min(i, len(pt) - 1)][1], 255.0) for i in range(n))
        print(f"{lin:.6f} {gam:.6f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
