"""Write assets/broken: one bad media file of each kind the indexer must survive.

Why: a real media folder holds empty files, interrupted downloads, misnamed files and
decompression bombs. The indexer has to skip each of them with a reason instead of crashing,
and the tests need the files to prove it. Everything here is derived deterministically (the
"random" bytes come from SHA-256 in counter mode), so rerunning gives identical files.

  zero_bytes.jpg   an empty file
  truncated.jpg    a real JPEG cut after 40% of its bytes
  text_as.jpg      a plain text file with a .jpg name
  huge_pixels.png  a valid 30000x30000 1-bit PNG (900 megapixels) of one colour, ~110 KB
  corrupt.mp4      64 KiB of pseudo-random bytes with an .mp4 name
  truncated.mp4    a real H.264 MP4 cut in half (its moov index, written last, is lost)
  few_frames.mp4   a valid H.264 MP4 with only 3 frames
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from pathlib import Path

from PIL import Image
from skimage import data

from asset_cli import ASSETS, out_folder
from make_sample_videos import FPS, blue_square_sliding, encode, red_ball_bouncing

HUGE_SIDE = 30_000
HUGE_LIMIT_BYTES = 200_000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NOT_AN_IMAGE = "This is a plain text file that only pretends to be a JPEG.\n"


def write_truncated_jpeg(path: Path, keep: float = 0.4) -> None:
    buffer = io.BytesIO()
    Image.fromarray(data.coffee()).save(buffer, "JPEG", quality=88)
    whole = buffer.getvalue()
    path.write_bytes(whole[: int(len(whole) * keep)])


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def write_huge_png(path: Path, side: int = HUGE_SIDE) -> None:
    """A valid 1-bit greyscale PNG, all black, compressed row by row.

    Written with zlib instead of Pillow because Pillow would need the whole 900-megapixel
    image in memory (one byte per pixel, ~900 MB) just to save a file of ~110 KB.
    """
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # bit depth 1, greyscale
    row = bytes(1 + (side + 7) // 8)  # filter byte 0, then the packed pixels, all 0
    compressor = zlib.compressobj(9)
    pixels = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    path.write_bytes(
        PNG_SIGNATURE + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", pixels) + png_chunk(b"IEND", b"")
    )
    size = path.stat().st_size
    if size >= HUGE_LIMIT_BYTES:
        raise RuntimeError(f"{path} is {size} bytes, meant to stay under {HUGE_LIMIT_BYTES}")
    try:
        Image.open(path).close()
    except Image.DecompressionBombError:
        return  # Pillow read the header and refused the pixel count, as intended
    raise RuntimeError(f"Pillow opened {path} without flagging it as a decompression bomb")


def pseudo_random_bytes(count: int) -> bytes:
    blocks = (hashlib.sha256(b"gridrank-corrupt-%d" % i).digest() for i in range(-(-count // 32)))
    return b"".join(blocks)[:count]


def write_truncated_mp4(path: Path) -> None:
    encode(path, blue_square_sliding, 3 * FPS)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])


def build(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "zero_bytes.jpg").write_bytes(b"")
    write_truncated_jpeg(out / "truncated.jpg")
    (out / "text_as.jpg").write_text(NOT_AN_IMAGE, encoding="utf-8")
    write_huge_png(out / "huge_pixels.png")
    (out / "corrupt.mp4").write_bytes(pseudo_random_bytes(64 * 1024))
    write_truncated_mp4(out / "truncated.mp4")
    encode(out / "few_frames.mp4", red_ball_bouncing, 3)
    return sorted(out.iterdir())


def main() -> None:
    out = out_folder(__doc__, ASSETS / "broken", "the broken files")
    for path in build(out):
        print(f"{path.stat().st_size:>8}  {path}")


if __name__ == "__main__":
    main()
