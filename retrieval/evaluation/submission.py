"""The files the CIRR and CIRCO test servers score, one per method of a composed run (val or test split).

Formats, from the servers' own documentation and code:
- CIRR (Cuberick-Orion/CIRR, Test-split_server.md; written as SEARLE's generate_test_submission.py does):
  {"version": "rc2", "metric": "recall", "<pairid>": [top 50 image names, the reference left out]} and
  {"version": "rc2", "metric": "recall_subset", "<pairid>": [top 3 names within the query's image set]}.
- CIRCO (miccunifi/CIRCO README, "Submission Format"; src/evaluation.py): {"<query id>": [top 50 image ids
  as integers]}, every query of the split, ids 0..n-1.
Each file is checked against its format before it is written, so a bug never yields a file the server
rejects or, worse, scores wrongly.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from retrieval.datasets import RetrievalDataset
from retrieval.evaluation.results import SUBSET_TOP, QueryOutcome

SUBMISSION_DEPTH = 50  # both servers take each query's top 50
CIRR_VERSION = "rc2"
SERVERS = ("cirr", "circo")  # the datasets whose test splits a server scores


class SubmissionFormatError(ValueError):
    """A submission that its server would reject; the message says which query and what is wrong."""


def cirr_submissions(dataset: RetrievalDataset, outcomes: Sequence[QueryOutcome]) -> tuple[dict, dict]:
    """The recall and recall_subset files of one method's run over every CIRR query."""
    recall: dict = {"version": CIRR_VERSION, "metric": "recall"}
    subset: dict = {"version": CIRR_VERSION, "metric": "recall_subset"}
    for outcome in outcomes:
        pair_id = dataset.queries[outcome.query].id
        recall[pair_id] = [dataset.gallery[i].id for i in outcome.top or ()]
        subset[pair_id] = [dataset.gallery[i].id for i in outcome.subset_top or ()]
    check_cirr(recall, subset, dataset)
    return recall, subset


def circo_submission(dataset: RetrievalDataset, outcomes: Sequence[QueryOutcome]) -> dict:
    submission = {dataset.queries[o.query].id: [int(dataset.gallery[i].id) for i in o.top or ()] for o in outcomes}
    check_circo(submission, dataset)
    return submission


def check_cirr(recall: dict, subset: dict, dataset: RetrievalDataset) -> None:
    gallery = {item.id for item in dataset.gallery}
    for submission, metric in ((recall, "recall"), (subset, "recall_subset")):
        if submission.get("version") != CIRR_VERSION or submission.get("metric") != metric:
            raise SubmissionFormatError(f"CIRR {metric}: needs \"version\": \"{CIRR_VERSION}\" and \"metric\": "
                                        f"\"{metric}\", got {submission.get('version')!r}, {submission.get('metric')!r}")
        _check_queries(submission.keys() - {"version", "metric"}, [q.id for q in dataset.queries], f"CIRR {metric}")
    depth = min(SUBMISSION_DEPTH, len(dataset.gallery) - 1)  # the reference is never listed
    for query in dataset.queries:
        reference = dataset.gallery[query.reference].id
        listed = recall[query.id]
        _check_list(listed, depth, gallery, f"CIRR recall, pair {query.id}")
        if reference in listed:
            raise SubmissionFormatError(f"CIRR recall, pair {query.id}: lists its reference image {reference}")
        members = {dataset.gallery[i].id for i in query.subset or ()}
        _check_list(subset[query.id], min(SUBSET_TOP, len(members)), members,
                    f"CIRR recall_subset, pair {query.id} (its image set, the reference left out)")


def check_circo(submission: dict, dataset: RetrievalDataset) -> None:
    _check_queries(submission.keys(), [q.id for q in dataset.queries], "CIRCO")
    # The server asserts the keys are all the query ids, 0..n-1.
    if sorted(int(k) for k in submission) != list(range(len(submission))):
        raise SubmissionFormatError("CIRCO: query ids must be 0..n-1, every one present")
    gallery = {int(item.id) for item in dataset.gallery}
    depth = min(SUBMISSION_DEPTH, len(gallery))
    for query_id, listed in submission.items():
        if not all(isinstance(i, int) for i in listed):
            raise SubmissionFormatError(f"CIRCO, query {query_id}: image ids must be integers")
        _check_list(listed, depth, gallery, f"CIRCO, query {query_id}")


def _check_queries(keys, expected: list[str], name: str) -> None:
    missing, extra = set(expected) - set(keys), set(keys) - set(expected)
    if missing or extra:
        raise SubmissionFormatError(f"{name}: every query once, no other: {len(missing)} missing "
                                    f"(e.g. {sorted(missing)[:3]}), {len(extra)} unknown (e.g. {sorted(extra)[:3]})")


def _check_list(listed: list, length: int, allowed: set, where: str) -> None:
    if len(listed) != length:
        raise SubmissionFormatError(f"{where}: {len(listed)} images listed, the server takes {length}")
    if len(set(listed)) != len(listed):
        raise SubmissionFormatError(f"{where}: an image is listed twice")
    unknown = [i for i in listed if i not in allowed]
    if unknown:
        raise SubmissionFormatError(f"{where}: {unknown[0]!r} is not one of the images it may list")


def write_submissions(dataset: RetrievalDataset, outcomes_by_method: dict[str, list[QueryOutcome]], out: Path
                      ) -> tuple[list[Path], list[str]]:
    """Each method's submission files under OUT/submission/, and notes on the methods left out (a --limit run
    covers only some queries, and the servers take every one)."""
    paths: list[Path] = []
    notes: list[str] = []
    folder = out / "submission"
    for method, outcomes in outcomes_by_method.items():
        if len(outcomes) < len(dataset.queries) or any(o.top is None for o in outcomes):
            notes.append(f"no {dataset.name} submission for {method}: it ranked {len(outcomes)} of "
                         f"{len(dataset.queries)} queries (the server takes every one); run without --limit")
            continue
        outcomes = sorted(outcomes, key=lambda o: o.query)
        stem = f"{dataset.name}-{dataset.split}.{method}"
        if dataset.name == "cirr":
            recall, subset = cirr_submissions(dataset, outcomes)
            files = {f"{stem}.recall.json": recall, f"{stem}.recall_subset.json": subset}
        else:
            files = {f"{stem}.json": circo_submission(dataset, outcomes)}
        folder.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            path = folder / name
            path.write_text(json.dumps(content, sort_keys=True), encoding="utf-8")
            paths.append(path)
    return paths, notes
