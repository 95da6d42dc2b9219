"""scripts/screenshots.py: the README's screenshots, retaken from the running app in chromium."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
screenshots = pytest.importorskip("screenshots")

pytestmark = pytest.mark.skipif(not Path(screenshots.CHROMIUM).exists(),
                                reason=f"needs Debian's chromium at {screenshots.CHROMIUM}")


def test_the_script_retakes_every_readme_screenshot(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "screenshots.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    written = sorted(p.name for p in tmp_path.glob("*.png"))
    assert written == sorted(screenshots.SHOTS)
    for name in written:
        with Image.open(tmp_path / name) as im:
            assert 300 <= im.width <= 1000, (name, im.size)
            colours = im.convert("RGB").getcolors(maxcolors=1 << 16)
            assert colours is None or len(colours) > 8, name  # a page, not a blank
        assert (tmp_path / name).stat().st_size <= 150_000, name


def test_the_readme_shows_exactly_the_screenshots_the_script_takes():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    shown = set(re.findall(r"\(docs/screenshots/([\w.]+\.png)\)", readme))
    assert shown == set(screenshots.SHOTS)
    assert {p.name for p in (REPO / "docs" / "screenshots").glob("*.png")} == shown
