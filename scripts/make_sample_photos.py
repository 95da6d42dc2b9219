"""Write the sample photos in assets/sample/photos from scikit-image's bundled data.

Why: the demo and the tests need real photographs with a clear licence, and the images that
ship inside the scikit-image wheel are public domain or CC0 and load offline (no pooch
download). Rebuilding them from the installed package keeps the repository honest about
where every pixel came from. Besides plain JPEGs the folder holds one subfolder (scanner
recursion), a PNG and a WEBP copy (format coverage) and a JPEG whose EXIF Orientation is 6
(orientation handling). See assets/README.md for the licence of each file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from skimage import data

from asset_cli import ASSETS, out_folder

JPEG_QUALITY = 88
MAX_SIDE = 640
ORIENTATION_TAG = 0x0112
ROTATE_90_CW = 6  # EXIF value: the stored pixels must be turned 90 degrees clockwise to display

# (scikit-image function, file name relative to the photos folder)
PHOTOS = [
    ("astronaut", "space/astronaut_eileen_collins.jpg"),
    ("hubble_deep_field", "space/hubble_deep_field.jpg"),
    ("rocket", "rocket_launch_falcon9.jpg"),
    ("chelsea", "cat_chelsea.jpg"),
    ("coffee", "coffee_cup.jpg"),
    ("camera", "cameraman_gray.jpg"),
    ("coins", "greek_coins_gray.jpg"),
    ("clock", "wall_clock_motion_blur_gray.jpg"),
    ("brick", "brick_wall_gray.jpg"),
    ("grass", "grass_gray.jpg"),
    ("gravel", "gravel_gray.jpg"),
    ("retina", "retina_fundus.jpg"),
]
# Lossless or modern-format copies of two different photos: (source file, copy name).
COPIES = [
    ("cat_chelsea.jpg", "cat_chelsea_copy.png"),
    ("coffee_cup.jpg", "coffee_cup_copy.webp"),
]
# Portrait crop (rows, columns) of the rocket photo used for the EXIF-rotated file.
ROCKET_PORTRAIT = (slice(0, 427), slice(170, 470))


def load_photo(name: str) -> Image.Image:
    """One scikit-image sample as a PIL image, downscaled so its long side is <= MAX_SIDE."""
    image = Image.fromarray(getattr(data, name)())
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return image


def save_jpeg(image: Image.Image, path: Path, exif: Image.Exif | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {"exif": exif} if exif is not None else {}
    image.save(path, "JPEG", quality=JPEG_QUALITY, optimize=True, **extra)


def write_rotated(path: Path) -> None:
    """A portrait crop stored as landscape pixels plus Orientation=6, so it displays upright."""
    upright = Image.fromarray(data.rocket()[ROCKET_PORTRAIT])
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # counter-clockwise: landscape pixels
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = ROTATE_90_CW
    save_jpeg(stored, path, exif)


def check_rotated(path: Path) -> None:
    """Fail loudly if the rotated file does not display as the upright portrait crop."""
    with Image.open(path) as stored:
        assert stored.width > stored.height, "stored pixels should be landscape"
        assert stored.getexif()[ORIENTATION_TAG] == ROTATE_90_CW
        shown = ImageOps.exif_transpose(stored)
    assert shown.height > shown.width, "displayed image should be portrait"
    upright = np.asarray(Image.fromarray(data.rocket()[ROCKET_PORTRAIT]), dtype=np.int16)
    error = np.abs(np.asarray(shown, dtype=np.int16) - upright).mean()
    assert error < 8, f"EXIF-transposed image differs from the upright crop (mean error {error:.1f})"


def build(out: Path) -> list[Path]:
    written = []
    for name, relative in PHOTOS:
        save_jpeg(load_photo(name), out / relative)
        written.append(out / relative)
    for source, copy in COPIES:
        with Image.open(out / source) as image:
            image.save(out / copy)
        written.append(out / copy)
    write_rotated(out / "rotated_exif6.jpg")
    check_rotated(out / "rotated_exif6.jpg")
    written.append(out / "rotated_exif6.jpg")
    return written


def main() -> None:
    out = out_folder(__doc__, ASSETS / "sample" / "photos", "the photos")
    for path in build(out):
        print(f"{path.stat().st_size:>8}  {path}")


if __name__ == "__main__":
    main()
