# gridrank: the web app on an index of /media. One CUDA line: PyPI's torch 2.14.1 is built for CUDA 13.0
# and brings its own CUDA libraries (the host needs an NVIDIA driver for CUDA 13 and the container toolkit);
# FAISS is faiss-cpu 1.15.1, the build the tests run (PyPI has no GPU build of FAISS for CUDA 13).
#
# GPU image:  docker build -t gridrank .
# CPU image:  docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cpu -t gridrank:cpu .
#             (PyTorch's CPU wheels: about 7 GB smaller, no CUDA libraries)
# Index:      docker run --gpus all -v ~/Media:/media -v ~/.cache/huggingface:/home/gridrank/.cache/huggingface \
#               gridrank gridrank index /media
# Serve:      docker run --gpus all -p 7860:7860 -v ~/Media:/media \
#               -v ~/.cache/huggingface:/home/gridrank/.cache/huggingface gridrank \
#               gridrank serve --host 0.0.0.0 --auth user:pass
# (Drop --gpus all for the CPU image.)
FROM python:3.11.14-slim-bookworm

# Where torch comes from: PyPI (CUDA 13.0 build) by default, or PyTorch's CPU index.
ARG TORCH_INDEX=https://pypi.org/simple

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    GRIDRANK_INDEX=/media/.gridrank

# Not root: the app reads the media folder and writes only its index, caches and thumbnails.
RUN useradd --create-home --uid 1000 gridrank

WORKDIR /opt/gridrank
COPY pyproject.toml README.md ./
COPY app ./app
COPY indexer ./indexer
COPY retrieval ./retrieval
COPY assets ./assets

# The versions the tests run: torch/torchvision as the README's install line, the rest pinned in pyproject.toml.
RUN python -m pip install --index-url "$TORCH_INDEX" torch==2.14.1 torchvision==0.29.1 \
    && python -m pip install .

USER 1000
EXPOSE 7860
# A real search of the served index, answered by the running server (--server always: no model load here,
# exit 2 when the server does not answer). The first start loads the models: allow it five minutes.
HEALTHCHECK --interval=60s --timeout=30s --start-period=300s --retries=3 \
    CMD ["gridrank", "search", "a photo", "--k", "1", "--server", "always"]
CMD ["gridrank", "serve", "--host", "0.0.0.0"]
