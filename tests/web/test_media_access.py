"""The allow-list in front of the file route: media inside the root only, decided without a server."""

import asyncio
from pathlib import Path

import pytest

from app.web.media_access import FILE_ROUTE, MediaAccess, MediaAccessDenied, MediaGuard


@pytest.fixture
def tree(tmp_path) -> dict[str, Path]:
    root = tmp_path / "root"
    (root / "photos").mkdir(parents=True)
    (root / ".gridrank").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    paths = {
        "root": root,
        "photo": root / "photos" / "cat.jpg",
        "video": root / "clip.mp4",
        "subs": root / "clip.srt",
        "catalog": root / ".gridrank" / "catalog.sqlite",
        "dotfile": root / "photos" / ".secret.jpg",
        "notes": root / "notes.txt",
        "secret": outside / "secret.jpg",
    }
    for path in paths.values():
        if path.suffix:
            path.write_bytes(b"x")
    (root / "photos" / "leak.jpg").symlink_to(paths["secret"])
    (root / "elsewhere").symlink_to(outside, target_is_directory=True)
    (root / "inner.jpg").symlink_to(paths["photo"])
    paths.update(leak=root / "photos" / "leak.jpg", elsewhere=root / "elsewhere", inner=root / "inner.jpg")
    return paths


def test_media_inside_the_root_is_served(tree):
    access = MediaAccess([tree["root"]])
    for name in ("photo", "video", "subs", "inner"):
        assert access.check(tree[name]) == tree[name].resolve()
    assert access.check("photos/cat.jpg", base=tree["root"]) == tree["photo"].resolve()


@pytest.mark.parametrize("requested", [
    "{root}/../outside/secret.jpg",  # ../ out of the root
    "{root}/photos/../../outside/secret.jpg",
    "{outside}/secret.jpg",  # absolute, outside
    "/etc/passwd",
    "{root}/photos/leak.jpg",  # a symlink inside the root that leads out
    "{root}/elsewhere/secret.jpg",  # a linked folder that leads out
    "{root}/.gridrank/catalog.sqlite",  # the index itself
    "{root}/photos/.secret.jpg",  # hidden
    "{root}/notes.txt",  # not media
    "{root}/photos/missing.jpg",
    "{root}/photos",  # a folder
])
def test_everything_else_is_refused(tree, requested):
    access = MediaAccess([tree["root"]])
    path = requested.format(root=tree["root"], outside=tree["secret"].parent)
    with pytest.raises(MediaAccessDenied):
        access.check(path)


def test_relative_paths_need_a_base(tree):
    with pytest.raises(MediaAccessDenied):
        MediaAccess([tree["root"]]).check("photos/cat.jpg")
    with pytest.raises(MediaAccessDenied):
        MediaAccess([tree["root"]]).check("../outside/secret.jpg", base=tree["root"])


def test_roots_can_change(tree):
    access = MediaAccess([tree["secret"].parent])
    assert access.check(tree["secret"])
    access.set_roots([tree["root"]])
    with pytest.raises(MediaAccessDenied):
        access.check(tree["secret"])


def _guarded_status(access: MediaAccess, path: str) -> int:
    """What MediaGuard answers for GET FILE_ROUTE + path: 403, or 200 when it passes the request on."""
    sent: list[dict] = []

    async def downstream(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "path": FILE_ROUTE + path, "root_path": ""}
    asyncio.run(MediaGuard(downstream, access)(scope, None, send))
    return sent[0]["status"]


def test_guard_checks_the_file_gradio_would_open(tree):
    """`root/elsewhere/../.gridrank/x`: Gradio normalizes `..` first and opens root/.gridrank/x."""
    access = MediaAccess([tree["root"]])
    root = tree["root"]
    assert _guarded_status(access, f"{root}/elsewhere/../.gridrank/catalog.sqlite") == 403
    assert _guarded_status(access, f"{root}/.gridrank/catalog.sqlite") == 403
    assert _guarded_status(access, f"{root}/notes.txt") == 403
    assert _guarded_status(access, f"{root}/photos/cat.jpg") == 200
    # Outside the roots the guard stays out of the way: Gradio's allowed_paths decide (and refuse).
    assert _guarded_status(access, "/etc/passwd") == 200
