import pytest
from PIL import Image

from retrieval.media.image_io import ImageRejected, load_rgb


def test_exif_orientation_is_applied_and_size_reported_as_displayed(tmp_path):
    path = tmp_path / "rot.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    Image.new("RGB", (40, 20), "blue").save(path, exif=exif)
    loaded = load_rgb(path, max_pixels=10_000)
    assert loaded.image.size == (20, 40)
    assert (loaded.width, loaded.height) == (20, 40)


def test_jpeg_draft_decodes_small_but_reports_full_size(tmp_path):
    path = tmp_path / "big.jpg"
    Image.new("RGB", (2000, 1600), "green").save(path, quality=80)
    loaded = load_rgb(path, max_pixels=10**8, draft_size=224)
    assert (loaded.width, loaded.height) == (2000, 1600)
    assert 224 <= min(loaded.image.size) < 1600  # decoded at a reduced scale, never below the model size


def test_pixel_guard_refuses_before_decoding(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("1", (5000, 5000)).save(path)
    with pytest.raises(ImageRejected, match="exceeds max_image_pixels"):
        load_rgb(path, max_pixels=1_000_000)


def test_exif_date_is_read(tmp_path):
    path = tmp_path / "dated.jpg"
    exif = Image.Exif()
    exif[306] = "2024:06:01 12:30:00"
    Image.new("RGB", (10, 10)).save(path, exif=exif)
    assert load_rgb(path, max_pixels=1000).taken_at == "2024-06-01T12:30:00"


def test_text_file_is_refused(tmp_path):
    path = tmp_path / "fake.jpg"
    path.write_text("not a picture")
    with pytest.raises(ImageRejected, match="not an image"):
        load_rgb(path, max_pixels=1000)


def test_a_decompression_bomb_names_the_configured_limit_not_pillows():
    from sample_media import SAMPLE

    bomb = SAMPLE.parent / "broken" / "huge_pixels.png"  # 30000 x 30000: above Pillow's own 179 MP limit too
    with pytest.raises(ImageRejected, match=r"30000x30000 = 900,000,000 pixels exceeds max_image_pixels=250,000,000"):
        load_rgb(bomb, max_pixels=250_000_000)
