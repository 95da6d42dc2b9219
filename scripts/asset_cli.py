"""The command line shared by the asset scripts: one --out folder, --help from the script's docstring."""

from __future__ import annotations

import argparse
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "assets"


def out_folder(doc: str, default: Path, what: str) -> Path:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=default,
                        help=f"folder for {what} (default: {default.relative_to(ASSETS.parent)})")
    return parser.parse_args().out
