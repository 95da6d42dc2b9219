"""Per-query outcomes, appended to a JSONL file as they finish (what makes a run resumable), and
the metrics computed from them."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retrieval.evaluation.methods import QueryCost
from retrieval.evaluation.tasks import RankingTask
from retrieval.evaluation.metrics import best_rank, mean_average_precision_at_k, mean_rank, median_rank, recall_at_k

RECALL_KS = (1, 5, 10, 50)
MAP_KS = (5, 10, 25, 50)  # CIRCO
SUBSET_KS = (1, 2, 3)  # CIRR Recall_subset
RATE_METRICS = ("R@", "mAP@", "Rsubset@")  # fractions in [0, 1], shown as percentages like the papers
SUBSET_TOP = max(SUBSET_KS)  # what CIRR's recall_subset submission lists per query (its server's K)


@dataclass(frozen=True)
class QueryOutcome:
    query: int  # row of the task
    ranks: tuple[int, ...]  # 1-based positions of the ground truth in the final ranking
    n_relevant: int
    subset_ranks: tuple[int, ...] | None = None  # positions within the query's CIRR subset
    cost: QueryCost | None = None
    caption: str | None = None  # SQAF's target caption, for reranked composed queries
    target_rank: int | None = None  # CIRCO: the rank of target_img_id, which Recall@K counts alone
    top: tuple[int, ...] | None = None  # the first task.keep_top items of the ranking (test-server files)
    subset_top: tuple[int, ...] | None = None  # CIRR: the first items of the ranking within the query's set

    def to_json(self) -> str:
        # Not dataclasses.asdict: its deep copy was a third of a 1000-query eval's time.
        return json.dumps({"query": self.query, "ranks": self.ranks, "n_relevant": self.n_relevant,
                           "subset_ranks": self.subset_ranks, "caption": self.caption,
                           "target_rank": self.target_rank, "top": self.top, "subset_top": self.subset_top,
                           "cost": dataclasses.asdict(self.cost) if self.cost else None})

    @classmethod
    def from_json(cls, line: str) -> QueryOutcome:
        data = json.loads(line)
        cost = QueryCost(**data["cost"]) if data.get("cost") else None
        subset = tuple(data["subset_ranks"]) if data.get("subset_ranks") is not None else None
        top, subset_top = data.get("top"), data.get("subset_top")
        return cls(data["query"], tuple(data["ranks"]), data["n_relevant"], subset, cost, data.get("caption"),
                   data.get("target_rank"), tuple(top) if top is not None else None,
                   tuple(subset_top) if subset_top is not None else None)


class OutcomeLog:
    """One method's outcomes on one task: a JSONL file, one line per finished query."""

    def __init__(self, path: Path):
        self.path = path

    def load(self) -> dict[int, QueryOutcome]:
        if not self.path.is_file():
            return {}
        text = self.path.read_text(encoding="utf-8")
        if text and not text.endswith("\n"):  # the last line was cut short by a kill: drop it, that query reruns
            text = text[: text.rfind("\n") + 1]
            self.path.write_text(text, encoding="utf-8")
        done: dict[int, QueryOutcome] = {}
        for line in text.splitlines():
            try:
                outcome = QueryOutcome.from_json(line)
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # damaged: that query runs again
            done[outcome.query] = outcome
        return done

    def append(self, outcome: QueryOutcome) -> None:
        self.extend([outcome])

    def extend(self, outcomes: Iterable[QueryOutcome]) -> None:
        """Add finished queries in one write (a kill can cut only the last line: `load` drops it)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write("".join(outcome.to_json() + "\n" for outcome in outcomes))
            f.flush()


@dataclass(frozen=True)
class CostSummary:
    mean_latency_s: float
    mean_calls: float
    mean_prompt_tokens: float
    mean_completion_tokens: float
    mean_visual_tokens: float
    fallbacks: int  # queries where (part of) the order is first-stage order: a failed or unparsable answer


@dataclass(frozen=True)
class MethodScores:
    direction: str
    method: str
    queries: int
    metrics: dict[str, float]  # metric name -> value; R@K etc. in [0, 1], MdR/MnR in ranks
    cost: CostSummary | None = None
    ties: str = "pessimistic"  # how equal scores were ordered (evaluation/methods.TIE_RULES)
    depth: int | None = None  # reranked rows: the model reordered the top `depth`; below it is first-stage order


def metric_names(task: RankingTask) -> list[str]:
    names = [f"R@{k}" for k in RECALL_KS] + ["MdR", "MnR"]
    if task.direction == "cir" and task.multiple_ground_truths:
        names += [f"mAP@{k}" for k in MAP_KS]
    if task.subsets is not None:
        names += [f"Rsubset@{k}" for k in SUBSET_KS]
    return names


def score(task: RankingTask, method: str, outcomes: Iterable[QueryOutcome], ties: str = "pessimistic",
          depth: int | None = None) -> MethodScores:
    outcomes = sorted(outcomes, key=lambda o: o.query)
    # Recall@K and the ranks count the first ground truth found; CIRCO's count its target alone.
    best = [o.target_rank if o.target_rank is not None else best_rank(o.ranks, task.n_items) for o in outcomes]
    metrics: dict[str, float] = {f"R@{k}": recall_at_k(best, k) for k in RECALL_KS}
    metrics |= {"MdR": median_rank(best), "MnR": mean_rank(best)}
    names = metric_names(task)
    for k in MAP_KS:
        if f"mAP@{k}" in names:
            metrics[f"mAP@{k}"] = mean_average_precision_at_k([o.ranks for o in outcomes],
                                                              [o.n_relevant for o in outcomes], k)
    if task.subsets is not None:
        subset_best = [best_rank(o.subset_ranks or (), task.n_items) for o in outcomes]
        metrics |= {f"Rsubset@{k}": recall_at_k(subset_best, k) for k in SUBSET_KS}
    if not task.ground_truth:  # a test split: its server computes the metrics from the submission files
        metrics = dict.fromkeys(metrics, float("nan"))
    costs = [o.cost for o in outcomes if o.cost is not None]
    return MethodScores(task.direction, method, len(outcomes), metrics, _cost_summary(costs) if costs else None,
                        ties, depth)


def _cost_summary(costs: list[QueryCost]) -> CostSummary:
    def mean(values) -> float:
        return float(np.mean(list(values)))

    return CostSummary(mean(c.latency_s for c in costs), mean(c.calls for c in costs),
                       mean(c.prompt_tokens for c in costs), mean(c.completion_tokens for c in costs),
                       mean(c.visual_tokens for c in costs), sum(1 for c in costs if c.fallback))
