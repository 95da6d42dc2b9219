"""Decode and embed on a Ray cluster: Ray Data map_batches, with an actor pool holding the CLIP encoder.

Only this stage moves. Scanning, planning and writing stay in the indexing process
(indexer/pipeline.py), and the actors run the same decode_item and embed_media as a local run,
so a Ray run writes the same index. Ray is the optional extra `gridrank[distributed]`; this
module imports it only inside its functions, so it loads without it.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Generator, Iterator

import numpy as np

from retrieval.errors import GridrankError
from indexer.decode import DecodeOptions, WorkItem, decode_item, first_line
from indexer.embed import EmbeddedMedia, embed_media, needs_model
from retrieval.models.encoder import ClipEncoder
from retrieval.settings import Settings

INSTALL_HINT = "pip install 'gridrank[distributed]'"
CONNECT_TIMEOUT_S = 5.0
CALLS_PER_ACTOR = 4  # at least, on short runs: evens out the actors' shares


class RayUnavailableError(GridrankError, RuntimeError):
    """Ray is not installed or the cluster cannot be reached; the message says what to do."""


def connect(address: str) -> None:
    """Join the Ray cluster at `address` as ray.init takes it ("auto", "ray://HOST:10001", "local")."""
    try:
        import ray
    except ImportError as e:
        raise RayUnavailableError(f"--ray needs Ray, which is not installed here: {INSTALL_HINT}") from e
    if ray.is_initialized():  # e.g. a caller that started its own session
        return
    endpoint = cluster_endpoint(address)
    if endpoint is not None:
        _check_reachable(address, *endpoint)
    local = address == "local"
    try:
        # The dashboard only exists on a cluster we start; worker logs would scribble over the progress bar.
        ray.init(address=address, log_to_driver=False, **({"include_dashboard": False} if local else {}))
    except Exception as e:  # ray.init raises many types (ConnectionError, ValueError, RuntimeError, timeouts)
        raise RayUnavailableError(
            f"cannot connect to the Ray cluster at {address!r}: {first_line(e)}. Start one with `ray start --head` "
            "and pass its address (auto on a cluster node, ray://HOST:10001 from elsewhere), or --ray local for a "
            f"Ray instance on this machine (Ray itself comes with {INSTALL_HINT})"
        ) from e


def cluster_endpoint(address: str) -> tuple[str, int] | None:
    """HOST and PORT of a "ray://HOST:PORT" or "HOST:PORT" address; None for "auto", "local" and the like."""
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def _check_reachable(address: str, host: str, port: int) -> None:
    # ray.init retries an unreachable head for minutes; a plain TCP connect answers in seconds.
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        raise RayUnavailableError(
            f"cannot reach the Ray cluster at {address!r}: {host}:{port} does not answer ({e.strerror or e}). "
            "Check that the head node runs `ray start --head` (the client server listens on 10001, the GCS on "
            "6379) and that this machine may connect to it"
        ) from None


def decode_batch(batch: dict[str, np.ndarray], work: list[WorkItem], options: DecodeOptions) -> dict[str, np.ndarray]:
    return {"media": _objects([decode_item(work[i], options) for i in batch["position"]])}


class Embedder:
    """Ray Data UDF: one CLIP encoder per actor, loaded once, embedding the decoded batches it is given."""

    def __init__(self, settings: Settings):
        self.encoder = ClipEncoder.from_settings(settings)
        self.batch_size = settings.batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        decoded = list(batch["media"])
        embedded = iter(embed_media(self.encoder, [m for m in decoded if needs_model(m)], self.batch_size))
        # Same order out as in: ids are given in plan order, as in a local run.
        return {"embedded": _objects([next(embedded) if needs_model(m) else EmbeddedMedia(m) for m in decoded])}


class RayEmbedding:
    """The planned work as a Ray Dataset: decode tasks, then the Embedder actor pool; rows come back in order.

    With GPUs in the cluster, one actor per GPU (num_gpus=1) and decoding in separate CPU tasks
    streaming into them; without, `settings.workers` CPU actors, decode fused into the same actor.
    """

    def __init__(self, work: list[WorkItem], options: DecodeOptions, settings: Settings):
        import ray
        from ray.data import ActorPoolStrategy, DataContext

        context = DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False  # the caller shows progress
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # its notes on execution would break up our progress bar
        resources = ray.cluster_resources()
        gpus = 0 if settings.device == "cpu" else int(resources.get("GPU", 0))
        if gpus:
            actors, decode_args, embed_args = gpus, {"num_cpus": 1}, {"num_cpus": 1, "num_gpus": 1}
        else:
            actors = max(1, settings.workers)
            cpus = max(1, int(resources.get("CPU", 1)) // actors)
            decode_args = embed_args = {"num_cpus": cpus}  # equal resources: Ray Data fuses the two stages
        # Media per call (embed_media splits them into forwards of batch_size frames); smaller calls when
        # the work is short, so that every actor gets about as many and none finishes long after the others.
        per_call = max(1, min(settings.batch_size, -(-len(work) // (actors * CALLS_PER_ACTOR))))
        blocks = max(1, -(-len(work) // per_call))
        self._rows: Generator[dict, None, None] | None = None
        if work:
            dataset = (
                # Rows are positions in the plan; the plan itself travels once, as an argument. (from_items, not
                # range: a read task would wait for a CPU that the actors hold.)
                ray.data.from_items([{"position": i} for i in range(len(work))],
                                    override_num_blocks=blocks)
                .map_batches(decode_batch, fn_kwargs={"work": work, "options": options}, batch_size=per_call,
                             **decode_args)
                .map_batches(Embedder, fn_constructor_args=(settings,), batch_size=per_call,
                             compute=ActorPoolStrategy(size=min(actors, blocks)), **embed_args)
            )
            self._rows = iter(dataset.iter_rows())

    def __iter__(self) -> Iterator[EmbeddedMedia]:
        if self._rows is not None:
            for row in self._rows:
                yield row["embedded"]

    def drain(self) -> list[EmbeddedMedia]:
        # Work still on the cluster is dropped (the next run redoes it); closing the stream stops the actors.
        if self._rows is not None:
            self._rows.close()
            self._rows = None
        return []


def _objects(values: list) -> np.ndarray:
    # A column of Python objects; np.array(values) would try to look inside them.
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column
