"""Which datapoint an annotator labels next.

- **Order.** Until a model serves some output of the project: dataset order (dataset id,
  then datapoint id). Once one does: least confident first. A datapoint's confidence is the
  lowest over the outputs that have a model -- classification: the top label's
  probability; multilabel: the least decided label, ``max(p, 1 - p)``; tagging: the least
  confident predicted span (1.0 when it predicts none). Ties keep dataset order. The
  ranking covers the first :data:`SCORED` datapoints still needing annotations, is
  computed once per set of model versions and kept in memory; annotated ones drop out as
  the queue is read.
- **Leases.** The datapoint handed out is leased to the annotator for :data:`LEASE_SECONDS`
  (renewed when they come back to it); nobody else gets it meanwhile. One lease per person
  and project: taking the next one releases the last.
- **Skips** go to the end of that person's queue (they come back once nothing else is left).
- **Suggestions.** With ``review_existing_annotations: true`` the page shows the model's
  prediction pre-selected, or, without a model yet, the value already in the output's source
  field (the labels under review).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from hlops.server.training import model_inputs, model_text
from hlops.server.web.store import Candidate, WebStore

SCORED = 10_000  # datapoints ranked by the model per project and model version
LEASE_SECONDS = 600.0
BATCH = 200
RANKINGS_KEPT = 16


class Queue:
    def __init__(self, web: WebStore, trainer: Any):
        self.web = web
        self.trainer = trainer
        self._rankings: OrderedDict[tuple, list[int]] = OrderedDict()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ models

    def models(self, org: int, project_id: int) -> tuple[Any, dict[str, Any]]:
        """The project's spec and output name -> serving model (outputs without one left out)."""
        spec = self.trainer.models.project(org, project_id)
        served = {}
        for output in spec.outputs:
            model = self.trainer.model(project_id, output["id"])
            if model is not None:
                served[output["name"]] = model
        return spec, served

    def _versions(self, project_id: int, spec: Any) -> tuple:
        return tuple(
            (o["id"], self.trainer.models.model_version(project_id, o["id"])) for o in spec.outputs
        )

    def ranking(self, org: int, project_id: int) -> list[int] | None:
        """Datapoint ids, least confident first; None until a model serves an output."""
        spec, served = self.models(org, project_id)
        if not served:
            return None
        key = (project_id, self._versions(project_id, spec))
        with self._lock:
            found = self._rankings.get(key)
            if found is not None:
                self._rankings.move_to_end(key)
                return found
            candidates = self.web.candidates(org, project_id, set(), SCORED)
            scores = confidences(spec, served, candidates)
            order = [c.id for _, _, c in sorted(zip(scores, range(len(candidates)), candidates), key=lambda t: t[:2])]
            self._rankings[key] = order
            while len(self._rankings) > RANKINGS_KEPT:
                self._rankings.popitem(last=False)
            return order

    # ------------------------------------------------------------------ next

    def next(self, org: int, project_id: int, email: str) -> Candidate | None:
        """The datapoint ``email`` should label now (leased to them), or None when done."""
        mine = self.web.my_lease(project_id, email)
        if mine is not None and self.web.unannotated(project_id, [mine]):
            if self.web.take_lease(project_id, mine, email, LEASE_SECONDS):
                return self.web.datapoint(org, project_id, mine)
        skipped = self.web.skipped(project_id, email)
        for attempt in range(5):  # another annotator may take our pick in between
            taken = self.web.leased_by_others(project_id, email)
            pick = self._first(org, project_id, taken | skipped) or self._first(org, project_id, taken)
            if pick is None:
                return None
            if self.web.take_lease(project_id, pick, email, LEASE_SECONDS):
                return self.web.datapoint(org, project_id, pick)
        return None

    def _first(self, org: int, project_id: int, exclude: set[int]) -> int | None:
        order = self.ranking(org, project_id)
        if order is not None:
            for i in range(0, len(order), BATCH):
                part = [d for d in order[i:i + BATCH] if d not in exclude]
                left = self.web.unannotated(project_id, part)
                pick = next((d for d in part if d in left), None)
                if pick is not None:
                    return pick
            # everything ranked is done: what lies beyond the ranked window, in dataset order
        found = self.web.candidates(org, project_id, exclude, 1)
        return found[0].id if found else None

    def open(self, org: int, project_id: int, email: str, datapoint_id: int) -> Candidate | None:
        """A given datapoint (undo, a link), leased to ``email``; None when someone else holds it."""
        dp = self.web.datapoint(org, project_id, datapoint_id)
        if not self.web.take_lease(project_id, datapoint_id, email, LEASE_SECONDS):
            return None
        return dp


def confidences(spec: Any, served: dict[str, Any], candidates: list[Candidate]) -> list[float]:
    """Each candidate's confidence: the lowest over the outputs with a model."""
    names = model_inputs(spec.inputs)
    scores = [1.0] * len(candidates)
    values = [spec.values(c.dataset_id, c.data) for c in candidates]
    for output in spec.outputs:
        model = served.get(output["name"])
        if model is None or not candidates:
            continue
        texts = [model_text(output, names, v) for v in values]
        preds = model.predict(texts, n_best=max(1, len(model.labels)))
        for i, pred in enumerate(preds):
            scores[i] = min(scores[i], _confidence(output["task_type"], pred))
    return scores


def _confidence(task_type: str, pred: list[dict]) -> float:
    if not pred:
        return 1.0
    if task_type == "classification":
        return max(p["confidence"] for p in pred)
    if task_type == "multilabel_classification":
        return min(max(p["confidence"], 1 - p["confidence"]) for p in pred)
    return min(p["confidence"] for p in pred)


def suggestion(spec: Any, served: dict[str, Any], output: dict, dp: Candidate, source_value: Any) -> tuple[Any, str] | None:
    """What to pre-select for ``output`` under review: the model's prediction, else the
    value in the output's source field. ``(value, where it comes from)`` or None."""
    model = served.get(output["name"])
    if model is not None:
        text = model_text(output, model_inputs(spec.inputs), spec.values(dp.dataset_id, dp.data))
        pred = model.predict([text], n_best=max(1, len(model.labels)))[0]
        task = output["task_type"]
        if task == "classification" and pred:
            best = max(pred, key=lambda p: p["confidence"])
            return best["label"], f"model suggestion ({best['confidence']:.0%})"
        if task == "multilabel_classification":
            return sorted(p["label"] for p in pred if p["confidence"] >= 0.5), "model suggestion"
        if task == "sequence_tagging":
            return [{"start": s["start"], "end": s["end"], "label": s["label"]} for s in pred], "model suggestion"
    if source_value is not None:
        return source_value, "from the data, to review"
    return None
