# GPU image: CUDA torch + faiss, serving the app. Build: docker build -t gridrank .
# Index: docker run --gpus all -v ~/Media:/media -v ~/.cache/huggingface:/root/.cache/huggingface \
#          gridrank gridrank index /media
# Serve: docker run --gpus all -p 7860:7860 -e GRIDRANK_INDEX=/media/.gridrank -v ~/Media:/media \
#          -v ~/.cache/huggingface:/root/.cache/huggingface gridrank gridrank serve --host 0.0.0.0 --auth user:pass
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_BREAK_SYSTEM_PACKAGES=1 \
    PYTHONUNBUFFERED=1

# Ubuntu's package versions move with its security updates; the base image tag pins the release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-pip python3-dev ffmpeg \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/gridrank
COPY pyproject.toml README.md ./
COPY app ./app
COPY indexer ./indexer
COPY retrieval ./retrieval
COPY assets ./assets

# PyPI's torch 2.14.1 is a CUDA build that brings its own CUDA libraries; faiss-gpu replaces faiss-cpu.
RUN python3 -m pip install torch==2.14.1 torchvision==0.29.1 \
    && python3 -m pip install . \
    && python3 -m pip uninstall -y faiss-cpu \
    && python3 -m pip install faiss-gpu-cu12==1.14.1.post1

EXPOSE 7860
ENV GRIDRANK_INDEX=/media/.gridrank
CMD ["gridrank", "serve", "--host", "0.0.0.0"]
