import numpy as np
import pytest
from hypothesis import given, strategies as st
from PIL import Image

from retrieval.rerank.grids import (
    BACKGROUND,
    BADGE,
    SEPARATOR,
    format_timestamp,
    grid_shape,
    letterbox,
    make_marked_grid,
    make_video_sgrid,
)
from retrieval.rerank.marks import number_marks
from retrieval.media.sampling import sample_uniform_indices

RED = (255, 0, 0)
WHITE = (255, 255, 255)


def solid(size, colour):
    return Image.new("RGB", size, colour)


def pixel(image, x, y):
    return tuple(int(v) for v in np.asarray(image)[y, x])


@pytest.mark.parametrize(
    "k, shape",
    [(1, (1, 1)), (2, (1, 2)), (4, (2, 2)), (5, (2, 3)), (9, (3, 3)), (10, (3, 4)), (20, (4, 5))],
)
def test_grid_shape_is_near_square(k, shape):
    assert grid_shape(k) == shape


@pytest.mark.parametrize("k", [1, 4, 5, 9, 16, 20])
def test_grid_size_and_cell_boxes(k):
    cell, sep = 64, 3
    grid = make_marked_grid([solid((30, 20), RED)] * k, cell_size=cell, separator=sep)
    rows, cols = grid_shape(k)
    assert (grid.rows, grid.cols) == (rows, cols)
    assert grid.image.size == (cols * cell + (cols - 1) * sep, rows * cell + (rows - 1) * sep)
    assert [c.index for c in grid.cells] == list(range(k))
    width, height = grid.image.size
    boxes = [c.box for c in grid.cells]
    for x0, y0, x1, y1 in boxes:
        assert 0 <= x0 < x1 <= width
        assert 0 <= y0 < y1 <= height
        assert (x1 - x0, y1 - y0) == (cell, cell)
    # Cells are laid out in reading order and never overlap.
    assert boxes == sorted(boxes, key=lambda b: (b[1], b[0]))
    for a, b in zip(boxes, boxes[1:]):
        assert a[2] <= b[0] or a[3] <= b[1]


def test_separators_between_cells_and_empty_cells_are_background():
    grid = make_marked_grid([solid((50, 50), RED)] * 5, cell_size=50, separator=4)
    assert pixel(grid.image, 51, 25) == SEPARATOR  # between column 0 and 1
    assert pixel(grid.image, 25, 51) == SEPARATOR  # between row 0 and 1
    assert pixel(grid.image, 2 * 54 + 25, 54 + 25) == BACKGROUND  # 6th slot of 2x3 is empty


def test_letterbox_keeps_aspect_with_bands_top_and_bottom():
    grid = make_marked_grid([solid((200, 100), RED)], cell_size=224)
    image = grid.image
    # 200x100 scaled to 224x112, centred: bands of 56 px above and below.
    assert pixel(image, 112, 112) == RED
    assert pixel(image, 112, 30) == BACKGROUND
    assert pixel(image, 112, 200) == BACKGROUND
    assert pixel(image, 112, 57) == RED
    assert pixel(image, 112, 166) == RED
    assert pixel(image, 1, 112) == RED
    assert pixel(image, 222, 112) == RED


def test_letterbox_tall_image_has_bands_left_and_right():
    boxed = letterbox(solid((50, 100), RED), 80, 80)
    assert boxed.size == (80, 80)
    assert pixel(boxed, 40, 2) == RED
    assert pixel(boxed, 40, 77) == RED
    assert pixel(boxed, 5, 40) == BACKGROUND
    assert pixel(boxed, 75, 40) == BACKGROUND


def test_letterbox_puts_transparency_on_background_and_accepts_other_modes():
    transparent = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    assert pixel(letterbox(transparent, 20, 20), 10, 10) == BACKGROUND
    assert pixel(letterbox(Image.new("L", (10, 10), 255), 20, 20), 10, 10) == WHITE
    assert pixel(letterbox(Image.new("RGB", (0, 0)), 8, 8), 4, 4) == BACKGROUND


def badge_crop(grid, index):
    x0, y0, _, _ = grid.cells[index].box
    return np.asarray(grid.image)[y0 : y0 + 45, x0 : x0 + 45]


def test_marks_are_dark_badges_with_light_text_in_the_top_left_corner():
    grid = make_marked_grid([solid((100, 100), WHITE)] * 4, cell_size=224)
    assert [c.mark for c in grid.cells] == ["A", "B", "C", "D"]
    for index, cell in enumerate(grid.cells):
        x0, y0, x1, y1 = cell.box
        corner = badge_crop(grid, index)
        dark = (corner.max(axis=2) < 60).mean()
        light = (corner.min(axis=2) > 200).mean()
        assert dark > 0.3
        assert light > 0.05  # black box with white glyph strokes
        assert pixel(grid.image, x0 + 6, y0 + 25) == BADGE  # left edge of the box, beside the glyph
        assert pixel(grid.image, x1 - 5, y1 - 5) == WHITE  # the rest of the cell is the image
    # Different marks draw different glyphs.
    assert not np.array_equal(badge_crop(grid, 0), badge_crop(grid, 1))


def test_numeric_marks_and_mark_validation():
    images = [solid((20, 20), RED)] * 12
    grid = make_marked_grid(images, cell_size=48, marks=number_marks(12))
    assert [c.mark for c in grid.cells] == [str(i) for i in range(1, 13)]
    with pytest.raises(ValueError, match="at most 20"):
        make_marked_grid([solid((8, 8), RED)] * 21, cell_size=16)
    with pytest.raises(ValueError, match="marks for"):
        make_marked_grid(images[:3], marks=["A", "B"])
    with pytest.raises(ValueError, match="distinct"):
        make_marked_grid(images[:2], marks=["a", "A"])
    with pytest.raises(ValueError, match="at least one"):
        make_marked_grid([])


def colour(i):
    return (i * 12 % 256, 255 - i * 12 % 256, i * 40 % 256)


def cell_centres(image, g):
    size = image.size[0]
    edges = [i * size // g for i in range(g + 1)]
    return [
        pixel(image, (edges[c] + edges[c + 1]) // 2, (edges[r] + edges[r + 1]) // 2)
        for r in range(g)
        for c in range(g)
    ]


@pytest.mark.parametrize("n_frames", [1, 2, 5, 9, 20])
def test_sgrid_samples_frames_uniformly_in_reading_order(n_frames):
    frames = [solid((64, 36), colour(i)) for i in range(n_frames)]
    sgrid = make_video_sgrid(frames, g=3, size=448)
    assert sgrid.size == (448, 448)
    expected = [colour(i) for i in sample_uniform_indices(n_frames, 9)]
    assert cell_centres(sgrid, 3) == expected


def test_sgrid_size_not_divisible_by_g_is_fully_covered():
    sgrid = make_video_sgrid([solid((10, 10), RED)] * 4, g=3, size=100)
    assert sgrid.size == (100, 100)
    assert pixel(sgrid, 99, 99) == RED
    assert pixel(sgrid, 0, 0) == RED


def test_sgrid_timestamps_draw_a_badge_in_each_cell():
    frames = [solid((32, 32), WHITE)] * 4
    plain = np.asarray(make_video_sgrid(frames, g=2, size=200))
    stamped = np.asarray(make_video_sgrid(frames, g=2, size=200, timestamps=[0, 61, 122, 3601]))
    assert (plain == 255).all()
    for y0, x0 in [(0, 0), (0, 100), (100, 0), (100, 100)]:
        cell = stamped[y0 : y0 + 100, x0 : x0 + 100]
        assert (cell[80:, :40].max(axis=2) < 60).any()  # dark badge bottom-left
        assert (cell[:50, 50:] == 255).all()  # rest of the frame untouched
    with pytest.raises(ValueError, match="timestamps"):
        make_video_sgrid(frames, timestamps=[1.0])
    with pytest.raises(ValueError):
        make_video_sgrid([])


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0, "00:00"),
        (59.9, "00:59"),
        (61, "01:01"),
        (3599, "59:59"),
        (3661, "1:01:01"),
        (-3, "00:00"),
    ],
)
def test_format_timestamp(seconds, text):
    assert format_timestamp(seconds) == text


@pytest.mark.parametrize(
    "n_total, n_pick, expected",
    [
        (10, 5, [1, 3, 5, 7, 9]),
        (9, 3, [1, 4, 7]),
        (2, 4, [0, 0, 1, 1]),
        (1, 3, [0, 0, 0]),
        (5, 0, []),
    ],
)
def test_sample_uniform_indices_cases(n_total, n_pick, expected):
    assert sample_uniform_indices(n_total, n_pick) == expected


@given(st.integers(1, 500), st.integers(0, 100))
def test_sample_uniform_indices_properties(n_total, n_pick):
    picks = sample_uniform_indices(n_total, n_pick)
    assert len(picks) == n_pick
    assert picks == sorted(picks)
    assert all(0 <= i < n_total for i in picks)
    if n_pick <= n_total:
        assert len(set(picks)) == n_pick  # no repeats unless padding is needed
    else:
        assert set(picks) == set(range(n_total))  # padding repeats, never skips a frame


def test_sample_uniform_indices_rejects_impossible_requests():
    with pytest.raises(ValueError):
        sample_uniform_indices(0, 3)
    with pytest.raises(ValueError):
        sample_uniform_indices(3, -1)


def test_vics_sgrid_stretches_each_frame_to_its_cell_on_a_black_square():
    from retrieval.rerank.grids import make_vic_sgrid

    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    frames = [Image.new("RGB", (300, 100), c) for c in colours]  # wide frames: gridrank would letterbox them
    grid = make_vic_sgrid(frames, g=2, size=101)
    assert grid.size == (101, 101)
    pixels = np.asarray(grid)
    # floor(101 / 2) = 50 px cells, filled edge to edge (no bars), in reading order; the last row and column black.
    assert (pixels[:50, :50] == colours[0]).all() and (pixels[:50, 50:100] == colours[1]).all()
    assert (pixels[50:100, :50] == colours[2]).all() and (pixels[50:100, 50:100] == colours[3]).all()
    assert (pixels[100, :] == 0).all() and (pixels[:, 100] == 0).all()
    with pytest.raises(ValueError, match="exactly g\\*g = 4 frames, got 3"):
        make_vic_sgrid(frames[:3], g=2)


@pytest.mark.parametrize("total, pick", [(100, 9), (9, 9), (5, 9), (1000, 16), (7, 3), (1, 4), (30, 1)])
def test_vics_frames_run_from_the_first_to_the_last_as_numpy_linspace(total, pick):
    from retrieval.media.sampling import linspace_indices

    assert linspace_indices(total, pick) == np.linspace(0, total - 1, pick, dtype=int).tolist()
