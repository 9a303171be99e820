#!/usr/bin/python3
"""Pillow side of the imgd benchmark (driven by bench/main.go; see its comment).

Usage: pillow_bench.py MODE OUTDIR FILE...
       pillow_bench.py --version

Processes every FILE in turn in this one process, writing OUTDIR/<base name>.<ext>:

  old   the old Flask service's method: open, full decode, resize to exactly 300 x h
        (h keeps the aspect ratio, as the old service was asked), save JPEG quality 80
  best  the best Pillow can do for a thumbnail: draft() lets libjpeg decode at 1/2, 1/4
        or 1/8 scale, then thumbnail() to 300 px wide, save JPEG quality 80
  webp  open, save WebP quality 75 at full size

Exits 3 with a message when Pillow is not importable by this interpreter.
"""

import os
import sys

try:
    import PIL
    from PIL import Image
except ImportError:
    sys.stderr.write(
        "pillow_bench.py: Pillow (PIL) is not importable by %s; install python3-pil "
        "(Debian) for that interpreter or pass another one with -python\n" % sys.executable
    )
    sys.exit(3)

WIDTH = 300


def out_path(outdir, src, ext):
    return os.path.join(outdir, os.path.splitext(os.path.basename(src))[0] + ext)


def thumb_old(src, outdir):
    with Image.open(src) as im:
        w, h = im.size
        out = im.resize((WIDTH, max(1, round(WIDTH * h / w))))
        out.save(out_path(outdir, src, ".jpg"), "JPEG", quality=80)


def thumb_best(src, outdir):
    with Image.open(src) as im:
        w, h = im.size
        im.draft("RGB", (WIDTH, max(1, WIDTH * h // w)))
        im.thumbnail((WIDTH, 1 << 30))
        im.save(out_path(outdir, src, ".jpg"), "JPEG", quality=80)


def webp(src, outdir):
    with Image.open(src) as im:
        im.save(out_path(outdir, src, ".webp"), "WEBP", quality=75)


MODES = {"old": thumb_old, "best": thumb_best, "webp": webp}


def main(argv):
    if len(argv) == 2 and argv[1] == "--version":
        print("Pillow %s, Python %s" % (PIL.__version__, sys.version.split()[0]))
        return 0
    if len(argv) < 4 or argv[1] not in MODES:
        sys.stderr.write("usage: pillow_bench.py {%s} OUTDIR FILE...\n" % "|".join(MODES))
        return 2
    fn, outdir = MODES[argv[1]], argv[2]
    for src in argv[3:]:
        fn(src, outdir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
