"""The numbers of the progress page, and the geometry of its small inline-SVG charts
(pure: no I/O; the template draws what this computes)."""

from __future__ import annotations

from typing import Any

BAR_WIDTH = 360  # px of a full bar
SCORES = ("accuracy", "macro_f1", "majority_baseline_accuracy", "micro_f1", "subset_accuracy", "span_f1", "precision", "recall")


def figures(summary: dict, total: int, by_annotator: dict[str, dict[str, int]]) -> dict[str, Any]:
    """``summary``: the annotation summary with each output's ``model`` status."""
    outputs = []
    for out in summary["outputs"]:
        model = out.get("model") or {}
        metrics = model.get("metrics") or {}
        scores = [(k, metrics[k]) for k in SCORES if isinstance(metrics.get(k), (int, float))]
        outputs.append({
            "name": out["name"],
            "task_type": out["task_type"],
            "annotated": out["annotated"],
            "by_source": out["by_source"],
            "total": total,
            "share": out["annotated"] / total if total else 0.0,
            "bar": _bar(out["annotated"], total),
            "model": model,
            "scores": scores,
            "evaluation": metrics.get("evaluation"),
        })
    people = []
    top = max((sum(v.values()) for v in by_annotator.values()), default=0)
    for email, counts in sorted(by_annotator.items(), key=lambda kv: (-sum(kv[1].values()), kv[0])):
        n = sum(counts.values())
        people.append({"email": email, "counts": counts, "total": n, "bar": _bar(n, top)})
    return {"outputs": outputs, "people": people, "total": total, "bar_width": BAR_WIDTH,
            "annotated_datapoints": summary["annotated_datapoints"]}


def _bar(n: int, of: int) -> int:
    if of <= 0:
        return 0
    return max(1 if n else 0, round(BAR_WIDTH * min(n, of) / of))
