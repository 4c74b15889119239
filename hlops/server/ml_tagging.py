"""Sequence tagging for :mod:`hlops.server.ml`: character spans in, character spans out.

- **Tokens**: :func:`tokenize` — runs of word characters (``\\w+``, any script) and single
  other non-space characters, with their character offsets. Predicted spans always start
  and end on these token boundaries. (Scripts written without spaces, e.g. Chinese, come
  out as one token per run of characters: a known limitation.)
- **Tags**: BIO over tokens. A training span covers every token it overlaps (a span that
  cuts a token is widened to the whole token and counted in ``spans_widened``); a span
  overlapping an earlier one, or covering no token, is skipped (``spans_skipped``).
- **Features** per token: lowercased word, word shape (long and collapsed), prefixes and
  suffixes up to 3 characters, capitalisation / digit / punctuation flags, sentence
  start, and the words and shapes of the two neighbours on each side.
- **Model**: multinomial logistic regression over those binary features (fixed
  vocabulary, like the classifiers), then a Viterbi decode of the per-token probabilities
  under the BIO constraint (no ``I-X`` except after ``B-X`` / ``I-X``), so every decoded
  entity is a well-formed span. A span's ``confidence`` is the mean probability of its
  tokens' decoded tags.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from hlops.server import ml

_TOKEN = re.compile(r"\w+|[^\w\s]")
C_TAGGER = 1.0
#: From this many training tokens on, features seen once are dropped (smaller model,
#: faster training, little loss).
PRUNE_FROM_TOKENS = 20_000


def tokenize(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` character offsets of the tokens of ``text``."""
    return [m.span() for m in _TOKEN.finditer(text)]


def check_spans(value: Any, text: str, i: int) -> list[dict[str, Any]]:
    """A target of example ``i`` as a sorted list of valid spans into ``text``."""
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"targets[{i}] must be a list of {{start, end, label}} spans")
    spans = []
    for s in value:
        if not isinstance(s, Mapping):
            raise ValueError(f"targets[{i}] must be a list of {{start, end, label}} spans")
        start, end, label = s.get("start"), s.get("end"), s.get("label")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
            raise ValueError(f"targets[{i}]: span start and end must be integers")
        if not isinstance(label, str) or not label:
            raise ValueError(f"targets[{i}]: span label must be a non-empty string")
        if not 0 <= start < end <= len(text):
            raise ValueError(
                f"targets[{i}]: span {start}..{end} must satisfy 0 <= start < end <= {len(text)} (the text's length)"
            )
        spans.append({"start": start, "end": end, "label": label})
    spans.sort(key=lambda s: (s["start"], s["end"], s["label"]))
    return spans


# --------------------------------------------------------------------------- tags


def bio_tags(
    tokens: list[tuple[int, int]], spans: list[dict[str, Any]]
) -> tuple[list[str], int, int]:
    """BIO tags of ``tokens`` from character ``spans``; also how many spans were widened
    to token boundaries and how many were skipped."""
    tags = ["O"] * len(tokens)
    widened = skipped = 0
    # Longer spans first among those starting at the same place, so a nested duplicate
    # does not win over the outer span.
    ends = [b for _, b in tokens]
    starts = [a for a, _ in tokens]
    for s in sorted(spans, key=lambda s: (s["start"], -s["end"], s["label"])):
        # Tokens overlapping the span: the first ending after its start, up to the last
        # starting before its end.
        idx = list(range(bisect_right(ends, s["start"]), bisect_left(starts, s["end"])))
        if not idx or any(tags[j] != "O" for j in idx):
            skipped += 1
            continue
        if tokens[idx[0]][0] != s["start"] or tokens[idx[-1]][1] != s["end"]:
            widened += 1
        tags[idx[0]] = "B-" + s["label"]
        for j in idx[1:]:
            tags[j] = "I-" + s["label"]
    return tags, widened, skipped


def _shape(word: str) -> str:
    out = []
    for ch in word:
        if ch.isupper():
            out.append("X")
        elif ch.islower():
            out.append("x")
        elif ch.isdigit():
            out.append("d")
        elif ch.isalpha():
            out.append("a")
        else:
            out.append(ch)
    return "".join(out)


def _collapse(shape: str, keep: int) -> str:
    out: list[str] = []
    run = 0
    for ch in shape:
        run = run + 1 if out and out[-1] == ch else 1
        if run <= keep:
            out.append(ch)
    return "".join(out)


def _word_features(word: str) -> tuple[str, tuple[str, ...]]:
    """Collapsed shape and the features that depend on the word alone."""
    lw = word.lower()
    shape = _shape(word)
    short = _collapse(shape, 1)
    f = [
        "w=" + lw,
        "S=" + _collapse(shape, 4),
        "s=" + short,
        "p1=" + lw[:1],
        "p2=" + lw[:2],
        "p3=" + lw[:3],
        "x1=" + lw[-1:],
        "x2=" + lw[-2:],
        "x3=" + lw[-3:],
    ]
    if word[:1].isupper():
        f.append("cap")
    if word.isupper() and len(word) > 1:
        f.append("upper")
    if word.isdigit():
        f.append("digit")
    if not word[:1].isalnum():
        f.append("punct")
    return short, tuple(f)


_SENTENCE_END = frozenset((".", "!", "?", ":", "\u3002"))


def _shifted(values: list[str], d: int, pad: str) -> list[str]:
    """``out[i] = values[i + d]`` (``pad`` outside the sequence)."""
    n = len(values)
    if d < 0:
        return [pad] * min(-d, n) + values[: max(n + d, 0)]
    return values[d:] + [pad] * min(d, n)


def token_features(
    text: str, tokens: list[tuple[int, int]], cache: dict[str, tuple[str, tuple[str, ...]]] | None = None
) -> list[list[str]]:
    """The binary features of each token (as strings, each at most once per token).
    ``cache`` memoises the per-word part across calls of one fit or predict. Built column
    by column (one list per feature kind), which is what keeps this fast in Python."""
    if cache is None:
        cache = {}
    words = [text[a:b] for a, b in tokens]
    per_word = []
    for w in words:
        wf = cache.get(w)
        if wf is None:
            wf = cache[w] = _word_features(w)
        per_word.append(wf)
    lowers = [w.lower() for w in words]
    short = [wf[0] for wf in per_word]
    columns = []
    for d in (-2, -1, 1, 2):
        columns.append(_shifted([f"{d}w={x}" for x in lowers], d, f"{d}w=<pad>"))
        columns.append(_shifted([f"{d}s={x}" for x in short], d, f"{d}s=<pad>"))
    pairs = [f"{a}|{b}" for a, b in zip(lowers, lowers[1:])]
    columns.append(["-1w|w=<pad>"] + ["-1w|w=" + x for x in pairs])
    columns.append(["w|+1w=" + x for x in pairs] + ["w|+1w=<pad>"])
    feats = []
    prev_word, prev_end = ".", -1
    for (start, end), w, wf, context in zip(tokens, words, per_word, zip(*columns)):
        f = ["b", *wf[1], *context]
        if prev_word in _SENTENCE_END:
            f.append("sent_start")
            if w[:1].isupper():
                f.append("cap@start")
        if prev_end == start:
            f.append("glued")  # no space before, as in "Apple's"
        feats.append(f)
        prev_word, prev_end = w, end
    return feats


def _tag_classes(taxonomy: Sequence[str], seen: set[str]) -> list[str]:
    """The tags seen in training, in a fixed order: ``O`` first, then ``B-``/``I-`` of
    each label in taxonomy order. (``O`` can be missing: every token inside a span.)"""
    classes = ["O"] if "O" in seen or not seen else []
    for label in taxonomy:
        for prefix in ("B-", "I-"):
            if prefix + label in seen:
                classes.append(prefix + label)
    return classes


# --------------------------------------------------------------------------- fit


class _Prepared:
    """Tokens, token features and (for training) BIO tags of some texts, computed once
    and shared by the final fit and the evaluation fits.

    Features are interned: ``names[k]`` is feature k, and ``matrix`` is the binary
    token x feature matrix (one row per token, texts one after the other; the tokens of
    text i are rows ``starts[i]:starts[i + 1]``)."""

    def __init__(self, texts: Sequence[str], targets: Sequence[list[dict[str, Any]]] | None = None):
        cache: dict[str, Any] = {}
        self.tokens = [tokenize(t) for t in texts]
        every: list[str] = []
        lengths: list[int] = []
        for text, tk in zip(texts, self.tokens):
            for f in token_features(text, tk, cache):
                every.extend(f)
                lengths.append(len(f))
        ids = {name: k for k, name in enumerate(dict.fromkeys(every))}
        self.names = list(ids)
        flat = np.fromiter(map(ids.__getitem__, every), dtype=np.int64, count=len(every))
        indptr = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64)
        self.matrix = sp.csr_matrix((np.ones(len(flat)), flat, indptr), shape=(len(lengths), len(ids)))
        self.starts = np.concatenate([[0], np.cumsum([len(tk) for tk in self.tokens])]).astype(np.int64)
        self.tags: list[list[str]] = []
        self.widened = self.skipped = 0
        if targets is not None:
            for tk, spans in zip(self.tokens, targets):
                tags, w, s = bio_tags(tk, spans)
                self.tags.append(tags)
                self.widened += w
                self.skipped += s

    def rows(self, idx: Sequence[int]) -> sp.csr_matrix:
        """The token rows of the texts ``idx``, in that order."""
        parts = [np.arange(self.starts[i], self.starts[i + 1]) for i in idx]
        take = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        return self.matrix[take]


def _fit_prepared(prep: _Prepared, idx: Sequence[int], taxonomy: list[str], seed: int) -> dict[str, Any]:
    rows = prep.rows(idx)
    y_tags = [t for i in idx for t in prep.tags[i]]
    classes = _tag_classes(taxonomy, set(y_tags))
    counts = np.bincount(rows.indices, minlength=rows.shape[1])
    min_count = 2 if rows.shape[0] >= PRUNE_FROM_TOKENS else 1
    cols = np.flatnonzero(counts >= min_count)
    vocab = [prep.names[c] for c in cols]
    if len(classes) == 1 or rows.shape[0] == 0:
        coef, intercept = np.zeros((1, len(vocab))), np.zeros(1)
    else:
        x = rows[:, cols].tocsr()
        x.sort_indices()
        class_index = {c: j for j, c in enumerate(classes)}
        y = np.array([class_index[t] for t in y_tags])
        clf = ml._logreg(seed, C_TAGGER).fit(x, y)
        coef, intercept = clf.coef_, clf.intercept_
    return {
        "meta": {"features": vocab, "classes": classes},
        "arrays": {"coef": np.asarray(coef, dtype=np.float32), "intercept": np.asarray(intercept, dtype=np.float64)},
    }


def train(
    texts: list[str], targets: list[list[dict[str, Any]]], taxonomy: list[str], seed: int, evaluate: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The tagger's state (``meta``, ``arrays``) and its metrics (sizes, and when
    ``evaluate``, span scores from :func:`hlops.server.ml._eval_splits`)."""
    prep = _Prepared(texts, targets)
    state = _fit_prepared(prep, range(len(texts)), taxonomy, seed)
    metrics: dict[str, Any] = {
        "tokens": sum(len(t) for t in prep.tokens),
        "spans": sum(len(t) for t in targets),
        "spans_widened": prep.widened,
        "spans_skipped": prep.skipped,
    }
    metrics.update(_evaluate(prep, targets, taxonomy, seed) if evaluate else {"evaluation": "skipped"})
    return state, metrics


# --------------------------------------------------------------------------- predict


class Tagger:
    def __init__(self, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]):
        self.index = {x: j for j, x in enumerate(meta["features"])}
        self.classes = list(meta["classes"])
        self.coef, self.intercept = arrays["coef"], arrays["intercept"]
        k = len(self.classes)
        # Allowed transitions (prev -> cur) and starts under BIO: I-X only after B-X / I-X.
        self.trans = np.zeros((k, k))
        self.start = np.zeros(k)
        for j, c in enumerate(self.classes):
            if c.startswith("I-"):
                self.start[j] = -np.inf
                for i, p in enumerate(self.classes):
                    if p[2:] != c[2:] or p == "O":
                        self.trans[i, j] = -np.inf

    def predict(self, texts: list[str], n_best: int = 1) -> list[list[dict[str, Any]]]:
        """Spans per text; ``n_best`` does not apply (one best segmentation)."""
        return self.decode(_Prepared(texts), range(len(texts)))

    def decode(self, prep: _Prepared, idx: Sequence[int]) -> list[list[dict[str, Any]]]:
        rows = prep.rows(idx)
        if rows.shape[0] == 0:
            return [[] for _ in idx]
        # The prepared texts' feature ids -> this model's columns (-1: unknown feature).
        remap = np.array([self.index.get(name, -1) for name in prep.names], dtype=np.int64)
        cols = remap[rows.indices]
        row_of = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
        keep = cols >= 0
        x = sp.csr_matrix(
            (np.ones(int(keep.sum())), (row_of[keep], cols[keep])), shape=(rows.shape[0], len(self.index))
        )
        x.sort_indices()
        probs = ml._class_proba(x, self.coef, self.intercept, len(self.classes))
        out, pos = [], 0
        for i in idx:
            tk = prep.tokens[i]
            out.append(self._spans(tk, probs[pos : pos + len(tk)]))
            pos += len(tk)
        return out

    def _spans(self, tokens: list[tuple[int, int]], p: np.ndarray) -> list[dict[str, Any]]:
        if not tokens:
            return []
        tags = self._viterbi(p)
        spans: list[dict[str, Any]] = []
        cur: list[int] = []

        def close() -> None:
            if cur:
                label = self.classes[tags[cur[0]]][2:]
                conf = float(np.mean([p[j, tags[j]] for j in cur]))
                spans.append({"start": tokens[cur[0]][0], "end": tokens[cur[-1]][1], "label": label,
                              "confidence": round(conf, 6)})
                cur.clear()

        for j, t in enumerate(tags):
            name = self.classes[t]
            if name.startswith("B-") or name == "O":
                close()
            if name != "O":
                cur.append(j)
        close()
        return spans

    def _viterbi(self, p: np.ndarray) -> list[int]:
        with np.errstate(divide="ignore"):
            emit = np.log(p)
        n, k = emit.shape
        score = self.start + emit[0]
        back = np.zeros((n, k), dtype=np.int64)
        for t in range(1, n):
            cand = score[:, None] + self.trans  # prev x cur
            back[t] = np.argmax(cand, axis=0)
            score = cand[back[t], np.arange(k)] + emit[t]
        path = [int(np.argmax(score))]
        for t in range(n - 1, 0, -1):
            path.append(int(back[t, path[-1]]))
        return path[::-1]


# --------------------------------------------------------------------------- evaluation


def span_scores(pred: list[list[dict[str, Any]]], gold: list[list[dict[str, Any]]]) -> dict[str, float]:
    """Micro precision / recall / F1 of exact ``(start, end, label)`` matches."""
    tp = fp = fn = 0
    for p, g in zip(pred, gold):
        ps = {(s["start"], s["end"], s["label"]) for s in p}
        gs = {(s["start"], s["end"], s["label"]) for s in g}
        tp, fp, fn = tp + len(ps & gs), fp + len(ps - gs), fn + len(gs - ps)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "span_f1": round(f1, 4)}


def _evaluate(prep: _Prepared, targets: list[list[dict[str, Any]]], taxonomy: list[str], seed: int) -> dict[str, Any]:
    plan = ml._eval_splits(len(targets), None, seed)
    if plan is None or not any(targets):
        return {"evaluation": f"none (fewer than {ml.MIN_EVAL_EXAMPLES} examples or no spans)"}
    how, splits = plan
    pred: dict[int, list[dict[str, Any]]] = {}
    for train_idx, test_idx in splits:
        state = _fit_prepared(prep, train_idx, taxonomy, seed)
        for i, spans in zip(test_idx, Tagger(state["meta"], state["arrays"]).decode(prep, test_idx)):
            pred[i] = spans
    order = sorted(pred)
    return {
        "evaluation": how,
        "evaluated": len(order),
        **span_scores([pred[i] for i in order], [targets[i] for i in order]),
    }
