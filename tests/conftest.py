"""Shared fixtures: an isolated cache (the tiny models are built once per session), the sample media."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from sample_media import SAMPLE


@pytest.fixture(scope="session", autouse=True)
def isolated_environment(tmp_path_factory):
    """Keep tests away from the user's cache and 'last index', and from real model settings."""
    base = tmp_path_factory.mktemp("env")
    saved = dict(os.environ)
    for key in list(os.environ):
        if key.startswith("GRIDRANK_"):
            del os.environ[key]
    os.environ["GRIDRANK_CACHE_DIR"] = str(base / "cache")
    os.environ["XDG_STATE_HOME"] = str(base / "state")
    os.environ["HF_HUB_OFFLINE"] = "1"
    yield base
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def tiny_settings(isolated_environment):
    from retrieval.settings import load_settings

    return load_settings(None, profile="tiny", workers=0)


# The vector stores the shared search and index tests run against: FAISS files, and Milvus through milvus-lite.
STORES = ["faiss", "milvus-lite:vectors.db"]


@pytest.fixture(scope="session", params=STORES, ids=["faiss", "milvus-lite"])
def store_settings(request, tiny_settings):
    """The tiny settings with each vector store in turn."""
    from retrieval.settings import load_settings

    return load_settings(None, profile="tiny", workers=0, vector_store=request.param)


@pytest.fixture(scope="session")
def tiny_encoder(tiny_settings):
    from retrieval.models.encoder import ClipEncoder

    return ClipEncoder.from_settings(tiny_settings)


@pytest.fixture
def media_dir(tmp_path) -> Path:
    """A private copy of the sample media, free to change."""
    target = tmp_path / "media"
    shutil.copytree(SAMPLE, target)
    return target


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """Run `gridrank ARGS...` in-process through the real entry point and its error handling."""
    from app.cli import main

    def run(*args: str) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["gridrank", *map(str, args)])
        try:
            main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
