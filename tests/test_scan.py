import os

from PIL import Image

from indexer.scan import scan


def _touch_image(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), "red").save(path)


def test_finds_media_recursively_and_ignores_the_rest(tmp_path):
    _touch_image(tmp_path / "a.jpg")
    _touch_image(tmp_path / "deep" / "er" / "b.PNG")
    (tmp_path / "clip.MP4").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("hi")
    (tmp_path / "clip.srt").write_text("1")
    result = scan(tmp_path)
    assert [(f.rel_path, f.kind) for f in result.files] == [
        ("a.jpg", "image"), ("clip.MP4", "video"), ("deep/er/b.PNG", "image")]
    assert result.files[0].size == (tmp_path / "a.jpg").stat().st_size
    assert result.problems == []


def test_hidden_files_and_folders_are_skipped(tmp_path):
    _touch_image(tmp_path / ".gridrank" / "thumb.jpg")
    _touch_image(tmp_path / ".hidden.jpg")
    _touch_image(tmp_path / "seen.jpg")
    assert [f.rel_path for f in scan(tmp_path).files] == ["seen.jpg"]


def test_symlink_loops_end(tmp_path):
    _touch_image(tmp_path / "sub" / "x.jpg")
    os.symlink(tmp_path, tmp_path / "sub" / "loop")
    os.symlink(tmp_path / "sub", tmp_path / "sub" / "self")
    files = [f.rel_path for f in scan(tmp_path).files]
    assert files == ["sub/x.jpg"]


def test_symlinked_folder_outside_the_root_is_followed(tmp_path):
    outside = tmp_path / "outside"
    _touch_image(outside / "y.jpg")
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(outside, root / "linked")
    assert [f.rel_path for f in scan(root).files] == ["linked/y.jpg"]
