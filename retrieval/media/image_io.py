"""Opening an image file safely: one guard for indexed files, query images and uploads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from retrieval.errors import BadMediaError

# max_image_pixels is the one limit: checked below from the header, before any pixel is decoded. Pillow's own
# (179 MP) would otherwise refuse larger images whatever the setting says, and quote its limit instead of ours.
Image.MAX_IMAGE_PIXELS = None

_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 36867
_DATETIME = 306
_ORIENTATION = 0x0112


class ImageRejected(BadMediaError):
    """The file is not an image we will decode; the message says why, for the user."""


@dataclass(frozen=True)
class LoadedImage:
    image: Image.Image  # RGB, EXIF orientation applied; maybe a JPEG draft (smaller than full size)
    width: int  # full-resolution size as displayed (after EXIF rotation)
    height: int
    taken_at: str | None  # EXIF date in ISO 8601, when the file has one


def load_rgb(path: Path, max_pixels: int, draft_size: int | None = None) -> LoadedImage:
    """Decode `path` to RGB, refusing more than `max_pixels` before decoding any pixel data.

    With `draft_size`, JPEGs are decoded by libjpeg at 1/2..1/8 scale, never below that size:
    a 12 MP photo then costs a fraction of a full decode.
    """
    try:
        image = Image.open(path)
    except UnidentifiedImageError:
        raise ImageRejected("not an image Pillow can read (corrupt, or another format under an image name)") from None
    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise ImageRejected(
                f"{width}x{height} = {width * height:,} pixels exceeds max_image_pixels={max_pixels:,} "
                "(raise GRIDRANK_MAX_IMAGE_PIXELS to allow it)"
            )
        exif = image.getexif()
        if draft_size:
            image.draft("RGB", (draft_size, draft_size))
        rgb = ImageOps.exif_transpose(image).convert("RGB")
    # Orientations 5-8 turn the picture by 90 degrees.
    if exif.get(_ORIENTATION) in (5, 6, 7, 8):
        width, height = height, width
    return LoadedImage(rgb, width, height, _exif_date(exif))


def fit_pixels(image: Image.Image, max_pixels: int) -> Image.Image:
    """The image scaled down (aspect kept, bicubic) to at most max_pixels; unchanged when it already fits."""
    if image.width * image.height <= max_pixels:
        return image
    scale = (max_pixels / (image.width * image.height)) ** 0.5
    return image.resize((max(1, int(image.width * scale)), max(1, int(image.height * scale))),
                        Image.Resampling.BICUBIC)


def _exif_date(exif: Image.Exif) -> str | None:
    raw = exif.get_ifd(_EXIF_IFD).get(_DATETIME_ORIGINAL) or exif.get(_DATETIME)
    if not isinstance(raw, str) or len(raw) < 19:
        return None
    # EXIF writes '2024:06:01 12:00:00'; store ISO 8601.
    return f"{raw[0:4]}-{raw[5:7]}-{raw[8:10]}T{raw[11:19]}"
