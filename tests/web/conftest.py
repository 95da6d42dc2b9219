"""The web app on a free loopback port: tiny models, a private copy of the sample media, indexed once."""

from __future__ import annotations

from pathlib import Path

import pytest

from .support import free_port, indexed_copy


@pytest.fixture(scope="session")
def web_index(tmp_path_factory, tiny_settings, tiny_encoder) -> tuple[Path, Path]:
    return indexed_copy(tmp_path_factory.mktemp("web"), tiny_settings, tiny_encoder)


@pytest.fixture(scope="session")
def web_settings(tiny_settings):
    """The tiny profile with small reranker inputs: the tiny Qwen2-VL answers in about a second.

    (S-Grids keep their 448 px: the Video tab shows them; the model sees them shrunk to max_pixels.)
    """
    return tiny_settings.model_copy(update={"reranker_max_pixels": 112 * 112, "grid_cell_size": 64})


@pytest.fixture(scope="session")
def web_server(web_index, web_settings, tiny_encoder):
    """The running app (uploads limited to 1 MB), shared by the HTTP, API and browser tests."""
    from app.web.server import ServeOptions, open_backend, start

    _, index_dir = web_index
    backend = open_backend(index_dir, web_settings, tiny_encoder, max_upload_mb=1)
    server = start(backend, ServeOptions(port=free_port(), max_upload_mb=1, quiet=True))
    yield server
    server.close()
