"""`gridrank index --ray` errors a user can fix: exit 2 with a one-line message that says what to do."""

import sys

import pytest

from indexer.ray_embedding import cluster_endpoint
from retrieval.store.index_store import CATALOG_FILE


def test_missing_ray_names_the_extra(media_dir, run_cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees without the extra
    result = run_cli("index", media_dir, "--tiny", "--ray", "local")
    assert result.code == 2
    assert "pip install 'gridrank[distributed]'" in result.err
    assert not (media_dir / ".gridrank" / CATALOG_FILE).exists()  # failed before touching the index


def test_unreachable_cluster_fails_fast(media_dir, run_cli):
    pytest.importorskip("ray", reason="Ray is the optional extra: pip install -e '.[dev,distributed]'")
    result = run_cli("index", media_dir, "--tiny", "--ray", "127.0.0.1:1")
    assert result.code == 2
    assert "cannot reach the Ray cluster at '127.0.0.1:1'" in result.err
    assert "ray start --head" in result.err
    assert not (media_dir / ".gridrank" / CATALOG_FILE).exists()


@pytest.mark.parametrize("address, endpoint", [
    ("ray://head.example:10001", ("head.example", 10001)),
    ("10.0.0.5:6379", ("10.0.0.5", 6379)),
    ("ray://[::1]:10001", ("::1", 10001)),
    ("auto", None),
    ("local", None),
    ("ray://head.example", None),
])
def test_cluster_endpoint(address, endpoint):
    assert cluster_endpoint(address) == endpoint


def test_help_names_the_extra(run_cli):
    result = run_cli("index", "--help")
    assert result.code == 0
    assert "gridrank[distributed]" in " ".join(result.out.split())
