"""Quality of the reference server's models (``hlops/server/ml.py``) on the examples.

    .venv/bin/python bench/bench_quality.py            # writes bench/results/quality.json
    .venv/bin/python bench/bench_quality.py --no-write # print only
    .venv/bin/python bench/bench_quality.py --scale 0  # skip the timing section

- **Classifier**, on the sentiment example (``examples/projects/sentiment``): accuracy and
  macro-F1 on held-out labelled rows, next to a majority-class baseline (the most frequent
  label of the training rows, predicted for every held-out row).
- **Tagger**, on the entities example (``examples/projects/entities``): exact-match span
  precision / recall / F1 on held-out labelled rows, next to a dictionary baseline (every
  training span's surface string with its most frequent label, matched case-sensitively on
  token boundaries in the held-out texts, longest match first). Recall is also reported on
  the held-out spans whose surface string never occurs as a span in training ("unseen"):
  the dictionary cannot find those by construction; the tagger has to generalise.

The split is fixed, no randomness: the labelled rows in file order, every 4th one (index
3, 7, 11, ...) held out, the rest for training. Which files and fields are read comes
from the example's manifests: the Dataset's ``data:`` file (relative to its manifest), the
Project output's ``from`` field (labels) and its text input (``input:`` for tagging, the
first non-``display_only`` input for classification).

- **Scale** (``--scale N``, default 3000): training time (wall and CPU, with and without
  the built-in evaluation), prediction time and model size on N rows per task, each row
  two random labelled example texts joined. Wall times depend on the machine's load,
  which is recorded next to them.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import platform
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hlops.server import ml, ml_tagging  # noqa: E402

HOLD_OUT_EVERY = 4


# --------------------------------------------------------------------------- loading


def _docs(example: Path) -> list[tuple[Path, dict[str, Any]]]:
    out = []
    for path in sorted(example.glob("*.y*ml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(doc, dict) and doc.get("kind") in ("Dataset", "Project"):
                out.append((path, doc))
    return out


def _source(value: Any) -> str:
    """An input/output's ``from`` (short or long form, one reference or the first of a list)."""
    ref = value if isinstance(value, str) else value.get("from")
    return ref[0] if isinstance(ref, list) else ref


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if path.suffix == ".json":
        return json.loads(path.read_text(encoding="utf-8"))
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def load_example(example: Path, task_type: str) -> dict[str, Any]:
    """The labelled rows of the example's first output of ``task_type``:
    ``{"texts", "targets", "labels", "data_file", "rows"}``."""
    docs = _docs(example)
    datasets = {d["name"]: (p, d) for p, d in docs if d["kind"] == "Dataset"}
    for _, project in (x for x in docs if x[1]["kind"] == "Project"):
        for out_name, out in project.get("outputs", {}).items():
            if out.get("task_type") != task_type:
                continue
            label_ds, _, label_field = _source(out).rpartition(".")
            inputs = project["inputs"]
            if task_type == "sequence_tagging":
                text_input = out["input"]
            else:
                text_input = next(
                    n for n, v in inputs.items() if isinstance(v, str) or not v.get("display_only")
                )
            text_ds, _, text_field = _source(inputs[text_input]).rpartition(".")
            if text_ds != label_ds:
                raise SystemExit(f"{example}: text and labels in different datasets is not supported here")
            manifest, dataset = datasets[label_ds]
            data_file = (manifest.parent / dataset["data"]).resolve()
            rows = _read_rows(data_file)
            labelled = [r for r in rows if r.get(label_field) is not None]
            labels = [lb if isinstance(lb, str) else lb["name"] for lb in out.get("labels", [])] or None
            return {
                "output": out_name,
                "texts": [r.get(text_field) or "" for r in labelled],
                "targets": [r[label_field] for r in labelled],
                "labels": labels,
                "data_file": data_file,
                "rows": len(rows),
            }
    raise SystemExit(f"{example}: no {task_type} output found")


def split(n: int) -> tuple[list[int], list[int]]:
    test = [i for i in range(n) if i % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1]
    train = [i for i in range(n) if i % HOLD_OUT_EVERY != HOLD_OUT_EVERY - 1]
    return train, test


# --------------------------------------------------------------------------- classifier


def _macro_f1(pred: list[str], gold: list[str]) -> float:
    f1s = []
    for label in sorted(set(gold) | set(pred)):
        tp = sum(p == label == g for p, g in zip(pred, gold))
        fp = sum(p == label != g for p, g in zip(pred, gold))
        fn = sum(g == label != p for p, g in zip(pred, gold))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(f1s) / len(f1s)


def bench_classifier(example: Path) -> dict[str, Any]:
    ex = load_example(example, "classification")
    train_idx, test_idx = split(len(ex["texts"]))
    tr_x = [ex["texts"][i] for i in train_idx]
    tr_y = [ex["targets"][i] for i in train_idx]
    te_x = [ex["texts"][i] for i in test_idx]
    te_y = [ex["targets"][i] for i in test_idx]
    t0 = time.perf_counter()
    model = ml.train("classification", tr_x, tr_y, labels=ex["labels"], seed=0)
    train_s = time.perf_counter() - t0
    pred = [v[0]["label"] for v in model.predict(te_x)]
    majority = Counter(tr_y).most_common(1)[0][0]
    base = [majority] * len(te_y)
    acc = sum(p == g for p, g in zip(pred, te_y)) / len(te_y)
    base_acc = sum(p == g for p, g in zip(base, te_y)) / len(te_y)
    return {
        "example": str(example.relative_to(ROOT)),
        "data_file": _file_info(ex["data_file"]),
        "output": ex["output"],
        "rows": ex["rows"],
        "labelled_rows": len(ex["texts"]),
        "train_rows": len(train_idx),
        "held_out_rows": len(test_idx),
        "held_out_label_counts": dict(sorted(Counter(te_y).items())),
        "model": {
            "accuracy": round(acc, 4),
            "macro_f1": round(_macro_f1(pred, te_y), 4),
            "train_seconds": round(train_s, 3),
            "cv_metrics_on_train_rows": {k: v for k, v in model.metrics.items() if k != "label_counts"},
        },
        "majority_baseline": {
            "label": majority,
            "accuracy": round(base_acc, 4),
            "macro_f1": round(_macro_f1(base, te_y), 4),
        },
        "errors": [
            {"text": x, "gold": g, "predicted": p}
            for x, g, p in zip(te_x, te_y, pred) if g != p
        ],
    }


# --------------------------------------------------------------------------- tagger


def dictionary_tagger(texts: list[str], targets: list[list[dict[str, Any]]]):
    """The baseline: surface string -> most frequent label, from the training spans."""
    seen: dict[str, Counter] = {}
    for text, spans in zip(texts, targets):
        for s in spans:
            seen.setdefault(text[s["start"] : s["end"]], Counter())[s["label"]] += 1
    entries = {surface: c.most_common(1)[0][0] for surface, c in seen.items()}

    def predict(text: str) -> list[dict[str, Any]]:
        tokens = ml_tagging.tokenize(text)
        starts = {a for a, _ in tokens}
        ends = {b for _, b in tokens}
        found, taken = [], set()
        for surface in sorted(entries, key=lambda s: (-len(s), s)):
            pos = text.find(surface)
            while pos != -1:
                end = pos + len(surface)
                if pos in starts and end in ends and not taken & set(range(pos, end)):
                    found.append({"start": pos, "end": end, "label": entries[surface]})
                    taken |= set(range(pos, end))
                pos = text.find(surface, pos + 1)
        return sorted(found, key=lambda s: s["start"])

    return predict, set(entries)


def _unseen_recall(pred, gold, texts, known: set[str]) -> tuple[float | None, int]:
    hit = total = 0
    for p, g, text in zip(pred, gold, texts):
        ps = {(s["start"], s["end"], s["label"]) for s in p}
        for s in g:
            if text[s["start"] : s["end"]] not in known:
                total += 1
                hit += (s["start"], s["end"], s["label"]) in ps
    return (round(hit / total, 4) if total else None), total


def bench_tagger(example: Path) -> dict[str, Any]:
    ex = load_example(example, "sequence_tagging")
    train_idx, test_idx = split(len(ex["texts"]))
    tr_x = [ex["texts"][i] for i in train_idx]
    tr_y = [ex["targets"][i] for i in train_idx]
    te_x = [ex["texts"][i] for i in test_idx]
    te_y = [ex["targets"][i] for i in test_idx]
    t0 = time.perf_counter()
    model = ml.train("sequence_tagging", tr_x, tr_y, labels=ex["labels"], seed=0)
    train_s = time.perf_counter() - t0
    pred = model.predict(te_x)
    dict_predict, known = dictionary_tagger(tr_x, tr_y)
    base = [dict_predict(t) for t in te_x]
    m_unseen, n_unseen = _unseen_recall(pred, te_y, te_x, known)
    b_unseen, _ = _unseen_recall(base, te_y, te_x, known)
    return {
        "example": str(example.relative_to(ROOT)),
        "data_file": _file_info(ex["data_file"]),
        "output": ex["output"],
        "rows": ex["rows"],
        "labelled_rows": len(ex["texts"]),
        "train_rows": len(train_idx),
        "held_out_rows": len(test_idx),
        "held_out_spans": sum(len(t) for t in te_y),
        "held_out_spans_unseen_in_training": n_unseen,
        "model": {
            **ml_tagging.span_scores(pred, te_y),
            "unseen_recall": m_unseen,
            "train_seconds": round(train_s, 3),
            "cv_metrics_on_train_rows": {k: v for k, v in model.metrics.items() if k != "label_counts"},
        },
        "dictionary_baseline": {
            **ml_tagging.span_scores(base, te_y),
            "unseen_recall": b_unseen,
            "entries": len(known),
        },
        "errors": [
            {
                "text": x,
                "missed": [x[s["start"] : s["end"]] + "/" + s["label"] for s in g if s not in [
                    {k: v for k, v in q.items() if k != "confidence"} for q in p]],
                "spurious": [x[s["start"] : s["end"]] + "/" + s["label"] for s in p
                             if {k: v for k, v in s.items() if k != "confidence"} not in g],
            }
            for x, g, p in zip(te_x, te_y, pred)
            if {(s["start"], s["end"], s["label"]) for s in g} != {(s["start"], s["end"], s["label"]) for s in p}
        ],
    }


# --------------------------------------------------------------------------- scale


def _pairs(texts, targets, n, rng, join_targets):
    out_x, out_y = [], []
    for _ in range(n):
        i, j = rng.randrange(len(texts)), rng.randrange(len(texts))
        out_x.append(texts[i] + " " + texts[j])
        out_y.append(join_targets(targets[i], targets[j], len(texts[i]) + 1))
    return out_x, out_y


def bench_scale(sentiment: Path, entities: Path, n: int) -> dict[str, Any]:
    """Training and prediction time on ``n`` rows per task, each row two random labelled
    example texts joined (realistic vocabulary and lengths, twice the text per row)."""
    rng = random.Random(0)
    s = load_example(sentiment, "classification")
    e = load_example(entities, "sequence_tagging")
    shift = lambda spans, k: [{**x, "start": x["start"] + k, "end": x["end"] + k} for x in spans]  # noqa: E731
    tasks = {
        "classification": _pairs(s["texts"], s["targets"], n, rng, lambda a, b, k: a),
        "multilabel_classification": _pairs(s["texts"], s["targets"], n, rng, lambda a, b, k: sorted({a, b})),
        "sequence_tagging": _pairs(e["texts"], e["targets"], n, rng, lambda a, b, k: a + shift(b, k)),
    }
    out: dict[str, Any] = {"rows": n, "load_average_before": [round(x, 2) for x in os.getloadavg()]}
    for task, (texts, targets) in tasks.items():
        row: dict[str, Any] = {"mean_text_chars": round(sum(map(len, texts)) / len(texts), 1)}
        for evaluate in (False, True):
            wall, cpu = time.perf_counter(), time.process_time()
            model = ml.train(task, texts, targets, evaluate=evaluate)
            key = "train" if not evaluate else "train_with_evaluation"
            row[f"{key}_seconds"] = round(time.perf_counter() - wall, 3)
            row[f"{key}_cpu_seconds"] = round(time.process_time() - cpu, 3)
        wall = time.perf_counter()
        model.predict(texts[:1000])
        row["predict_1000_seconds"] = round(time.perf_counter() - wall, 3)
        row["model_bytes"] = len(model.to_bytes())
        row["evaluation"] = {k: v for k, v in model.metrics.items() if k not in ("label_counts", "train_size")}
        out[task] = row
    return out


# --------------------------------------------------------------------------- main


def _file_info(path: Path) -> dict[str, Any]:
    return {
        "path": str(path.relative_to(ROOT)),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sentiment", type=Path, default=ROOT / "examples/projects/sentiment")
    ap.add_argument("--entities", type=Path, default=ROOT / "examples/projects/entities")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/quality.json")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--scale", type=int, default=3000, metavar="N",
                    help="also time training on N rows per task (0: skip)")
    args = ap.parse_args(argv)
    import numpy
    import scipy
    import sklearn

    result = {
        "command": ".venv/bin/python bench/bench_quality.py",
        "algorithm": ml.ALGORITHM,
        "split": f"labelled rows in file order; every {HOLD_OUT_EVERY}th (index % {HOLD_OUT_EVERY} == "
        f"{HOLD_OUT_EVERY - 1}) held out, the rest train; seed 0",
        "environment": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "numpy": numpy.__version__,
            "scipy": scipy.__version__,
        },
        "classification": bench_classifier(args.sentiment.resolve()),
        "sequence_tagging": bench_tagger(args.entities.resolve()),
    }
    if args.scale:
        result["scale"] = bench_scale(args.sentiment.resolve(), args.entities.resolve(), args.scale)
    text = json.dumps(result, indent=2, ensure_ascii=False) + "\n"
    if not args.no_write:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    c, t = result["classification"], result["sequence_tagging"]
    print(
        f"classification ({c['train_rows']} train / {c['held_out_rows']} held out): "
        f"accuracy {c['model']['accuracy']:.3f} vs majority baseline {c['majority_baseline']['accuracy']:.3f}; "
        f"macro-F1 {c['model']['macro_f1']:.3f} vs {c['majority_baseline']['macro_f1']:.3f}"
    )
    print(
        f"sequence_tagging ({t['train_rows']} train / {t['held_out_rows']} held out, "
        f"{t['held_out_spans']} spans, {t['held_out_spans_unseen_in_training']} unseen): "
        f"span F1 {t['model']['span_f1']:.3f} vs dictionary {t['dictionary_baseline']['span_f1']:.3f}; "
        f"unseen recall {t['model']['unseen_recall']} vs {t['dictionary_baseline']['unseen_recall']}"
    )
    for task, row in result.get("scale", {}).items():
        if isinstance(row, dict):
            print(
                f"scale {task} ({result['scale']['rows']} rows): train {row['train_seconds']} s "
                f"({row['train_with_evaluation_seconds']} s with evaluation), "
                f"predict 1000 in {row['predict_1000_seconds']} s"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
