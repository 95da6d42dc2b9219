"""Images the MLLM sees: marked candidate grids (SQUARE) and video S-Grids (ViC).

Pure functions of their inputs: PIL images in, a PIL image (plus the cell layout) out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
import math

from PIL import Image, ImageDraw, ImageFont

from retrieval.media.sampling import sample_uniform_indices

from .marks import check_candidate_count, letter_marks, validate_marks

RGB = tuple[int, int, int]
Box = tuple[int, int, int, int]

# Neutral grey letterbox bands read as "no content" rather than as part of a photo.
BACKGROUND: RGB = (128, 128, 128)
SEPARATOR: RGB = (255, 255, 255)
BADGE: RGB = (0, 0, 0)
BADGE_TEXT: RGB = (255, 255, 255)


@dataclass(frozen=True)
class GridCell:
    index: int  # position of the candidate in the input list
    mark: str
    box: Box  # (x0, y0, x1, y1) in grid pixels, x1 and y1 exclusive as in PIL


@dataclass(frozen=True)
class MarkedGrid:
    image: Image.Image
    cells: list[GridCell]
    rows: int
    cols: int


def grid_shape(k: int) -> tuple[int, int]:
    """(rows, cols) for k cells: cols = ceil(sqrt(k)), so the grid is as square as possible."""
    if k < 1:
        raise ValueError(f"a grid needs at least one cell, got {k}")
    cols = math.isqrt(k - 1) + 1  # exact integer ceil(sqrt(k))
    return math.ceil(k / cols), cols


def make_marked_grid(
    images: Sequence[Image.Image],
    cell_size: int = 224,
    marks: Sequence[str] | None = None,
    separator: int = 4,
) -> MarkedGrid:
    """Tile candidates into one near-square grid, each letterboxed with its mark top-left.

    Marks default to letters A, B, ...; pass number_marks(k) for "1".."k".
    """
    k = len(images)
    if k == 0:
        raise ValueError("a marked grid needs at least one image")
    check_candidate_count(k)
    marks = letter_marks(k) if marks is None else validate_marks(marks, k)
    if cell_size < 1 or separator < 0:
        raise ValueError(f"need cell_size >= 1 and separator >= 0, got {cell_size}, {separator}")

    rows, cols = grid_shape(k)
    pitch = cell_size + separator
    canvas = Image.new(
        "RGB", (cols * pitch - separator, rows * pitch - separator), SEPARATOR
    )
    font_size = max(8, cell_size // 6)
    margin = max(1, cell_size // 64)  # keeps the badge off the separator line
    cells: list[GridCell] = []
    for slot in range(rows * cols):
        row, col = divmod(slot, cols)
        x0, y0 = col * pitch, row * pitch
        if slot < k:
            cell = letterbox(images[slot], cell_size, cell_size)
            _draw_badge(cell, marks[slot], font_size, (margin, margin))
            cells.append(GridCell(slot, marks[slot], (x0, y0, x0 + cell_size, y0 + cell_size)))
        else:
            cell = Image.new("RGB", (cell_size, cell_size), BACKGROUND)
        canvas.paste(cell, (x0, y0))
    return MarkedGrid(canvas, cells, rows, cols)


def make_video_sgrid(
    frames: Sequence[Image.Image],
    g: int = 3,
    size: int = 448,
    timestamps: Sequence[float] | None = None,
) -> Image.Image:
    """One square image of g x g frames in reading order, sampled uniformly from `frames`.

    More frames than cells: g*g are picked at uniform positions; fewer: frames repeat evenly,
    in time order. `timestamps` (seconds, one per frame) are drawn small in each cell.
    """
    if not frames:
        raise ValueError("an S-Grid needs at least one frame")
    if g < 1 or size < g:
        raise ValueError(f"need g >= 1 and size >= g, got g={g}, size={size}")
    if timestamps is not None and len(timestamps) != len(frames):
        raise ValueError(f"got {len(timestamps)} timestamps for {len(frames)} frames")

    # Integer edges so cells tile `size` exactly even when g does not divide it.
    edges = [i * size // g for i in range(g + 1)]
    canvas = Image.new("RGB", (size, size), BACKGROUND)
    font_size = max(8, (size // g) // 10)
    for slot, frame_index in enumerate(sample_uniform_indices(len(frames), g * g)):
        row, col = divmod(slot, g)
        width, height = edges[col + 1] - edges[col], edges[row + 1] - edges[row]
        cell = letterbox(frames[frame_index], width, height)
        if timestamps is not None:
            text = format_timestamp(timestamps[frame_index])
            _draw_badge(cell, text, font_size, (1, height - 1), bottom=True)
        canvas.paste(cell, (edges[col], edges[row]))
    return canvas


def make_vic_sgrid(frames: Sequence[Image.Image], g: int = 3, size: int = 448) -> Image.Image:
    """ViC's S-Grid exactly (Scripts/ensemble_retrieval.py, get_first_frame): each of the g*g frames, in reading
    order, stretched (aspect not kept) to floor(size / g) px square with bicubic resampling and pasted on a
    black size x size canvas; what floor leaves at the right and bottom stays black. No timestamps."""
    if len(frames) != g * g:
        raise ValueError(f"ViC's S-Grid takes exactly g*g = {g * g} frames, got {len(frames)}")
    if g < 1 or size < g:
        raise ValueError(f"need g >= 1 and size >= g, got g={g}, size={size}")
    cell = size // g
    canvas = Image.new("RGB", (size, size))
    for slot, frame in enumerate(frames):
        row, col = divmod(slot, g)
        canvas.paste(_to_rgb(frame).resize((cell, cell), Image.Resampling.BICUBIC), (col * cell, row * cell))
    return canvas


def format_timestamp(seconds: float) -> str:
    """mm:ss (h:mm:ss from one hour on); negative times clamp to 00:00."""
    minutes, secs = divmod(max(0, int(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def letterbox(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale to fit width x height keeping the aspect ratio, centred on BACKGROUND."""
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    w, h = image.size
    if w == 0 or h == 0:  # nothing to show; an empty cell beats a division by zero
        return canvas
    scale = min(width / w, height / h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resized = _to_rgb(image).resize(size, Image.Resampling.BICUBIC)
    canvas.paste(resized, ((width - size[0]) // 2, (height - size[1]) // 2))
    return canvas


def _to_rgb(image: Image.Image) -> Image.Image:
    # Transparent areas go onto the neutral background instead of turning black.
    if "A" in image.getbands() or "transparency" in image.info:
        rgba = image.convert("RGBA")
        base = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        return Image.alpha_composite(base, rgba).convert("RGB")
    return image.convert("RGB")


def _draw_badge(
    cell: Image.Image, text: str, font_size: int, corner: tuple[int, int], bottom: bool = False
) -> None:
    """White text on a black rounded box; `corner` is its top-left (bottom-left if `bottom`)."""
    font = _font(font_size)
    draw = ImageDraw.Draw(cell)
    pad = max(2, font_size // 4)
    left, top, right, lower = draw.textbbox((0, 0), text, font=font)
    width, height = right - left + 2 * pad, lower - top + 2 * pad
    x0, y0 = corner[0], (corner[1] - height if bottom else corner[1])
    draw.rounded_rectangle((x0, y0, x0 + width, y0 + height), radius=pad, fill=BADGE)
    draw.text((x0 + pad - left, y0 + pad - top), text, font=font, fill=BADGE_TEXT)


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Pillow's bundled font: no font files to ship; sizeable when FreeType is available.
    return ImageFont.load_default(size=size)
