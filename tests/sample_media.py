"""Where the bundled sample media lives (assets/README.md describes every file)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "assets" / "sample"
BROKEN = REPO / "assets" / "broken"
