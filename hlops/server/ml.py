"""The reference server's machine-learning core: train a model from annotations, predict.

Pure functions and immutable objects: no I/O, no network, no global state (except that
:func:`train` holds BLAS to one thread while it runs), fixed seeds.
The server calls :func:`train` (in the background, as annotations grow), keeps
:meth:`Model.to_bytes` in its database, and answers ``POST /projects/{id}/predict`` with
:meth:`Model.predict`, whose items are the seed's ``value`` lists::

    model = train("classification", texts, ["positive", "neutral", ...], labels=taxonomy)
    model.predict(["The sound quality of these headphones were so disappointing"], n_best=2)
    # [[{"label": "negative", "confidence": 0.61}, {"label": "neutral", "confidence": 0.2}]]

Task types and what ``predict`` returns per text (``confidence`` in [0, 1], rounded to 6
decimals):

- ``classification`` (targets: one label string per text) — TF-IDF word 1-2-grams and
  character 2-5-grams, multinomial logistic regression. ``n_best`` entries
  ``{label, confidence}``, most probable first; the probabilities over the whole taxonomy
  sum to 1 (taxonomy labels never seen in training get 0).
- ``multilabel_classification`` (targets: a list of label strings per text, possibly
  empty) — the same features, one binary logistic regression per label (one-vs-rest; a
  label always or never present in training is a constant 1 or 0). Every label with
  confidence >= 0.5 (the model's decision), padded with the next most probable labels up
  to ``n_best`` entries, most probable first.
- ``sequence_tagging`` (targets: ``[{start, end, label}]`` character spans per text) —
  see :mod:`hlops.server.ml_tagging`: BIO tags over word tokens, logistic regression over
  per-token features, constrained Viterbi decoding, spans
  ``{start, end, label, confidence}`` on token boundaries. ``n_best`` does not apply
  (one best segmentation).

Serialisation (:meth:`Model.to_bytes` / :meth:`Model.from_bytes`) does **not** use
pickle: a model is a JSON header (parameters, vocabularies, metrics) plus raw
little-endian arrays (weights), and inference is a few lines of numpy on top of
scikit-learn's fixed-vocabulary ``CountVectorizer``. Loading bytes therefore never runs
code from them, and a model written by one scikit-learn version loads in another. The
bytes are still only meant to be read back by the server that wrote them: a malformed
blob raises :class:`ValueError`, but nothing authenticates where it came from.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson
import scipy.sparse as sp
from scipy.special import expit, softmax
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from threadpoolctl import threadpool_limits

TASK_TYPES = ("classification", "multilabel_classification", "sequence_tagging")
MIN_EXAMPLES = 10
#: Bumped whenever features, model or format change; part of every model's ``version``.
ALGORITHM = "hlops-ml-1"
#: Evaluate by cross-validation only from this many examples on (fewer: no estimate).
MIN_EVAL_EXAMPLES = 20
#: Up to this many examples, evaluate by 5-fold cross-validation; above, by a hold-out.
CV_MAX_EXAMPLES = 500
THRESHOLD = 0.5

# Text features shared by both classifiers. Stored in every model, so a model keeps the
# featurisation it was trained with even if these defaults change.
WORD_PARAMS = {
    "analyzer": "word",
    "ngram_range": [1, 2],
    "token_pattern": r"(?u)\b\w+\b",
    "lowercase": True,
    "max_features": 50_000,
}
CHAR_PARAMS = {
    "analyzer": "char_wb_ids",  # see char_ngram_ids()
    "ngram_range": [2, 5],
    "max_features": 100_000,
}
C_CLASSIFIER = 10.0


class NotEnoughData(ValueError):
    """Fewer than :data:`MIN_EXAMPLES` annotated examples (the server answers 409)."""


# --------------------------------------------------------------------------- public API


def train(
    task_type: str,
    texts: Sequence[str],
    targets: Sequence[Any],
    labels: Sequence[str] | None = None,
    seed: int = 0,
    *,
    evaluate: bool = True,
) -> Model:
    """Train a model for one output from its annotated examples.

    ``texts[i]`` is the input text of example i and ``targets[i]`` its annotation: a label
    (``classification``), a list of labels (``multilabel_classification``) or a list of
    ``{start, end, label}`` character spans into ``texts[i]`` (``sequence_tagging``).

    ``labels`` is the output's taxonomy, in the order the project lists it; predictions
    only ever name these labels. Without it, the taxonomy is the sorted set of labels seen
    in ``targets``. A target naming a label outside a given taxonomy is a
    :class:`ValueError` (the caller passes the whole taxonomy: explicit labels plus those
    found in source fields).

    ``evaluate`` (default on) adds a cross-validated estimate to ``metrics`` when there
    are at least :data:`MIN_EVAL_EXAMPLES` examples; it costs a few extra fits.

    Deterministic: the same arguments give the same model, byte for byte.
    Raises :class:`NotEnoughData` (a ``ValueError``) below :data:`MIN_EXAMPLES` examples,
    ``ValueError`` for malformed targets, ``TypeError`` for non-string texts.

    While it runs, BLAS and OpenMP are limited to one thread (``threadpoolctl``; this is
    process-wide for the duration): the solver's many small vector operations run 2-4x
    slower with threads that compete for the cores of a busy server, and the server
    trains in a background thread anyway.
    """
    with threadpool_limits(limits=1):
        return _train(task_type, texts, targets, labels, seed, evaluate)


def _train(
    task_type: str,
    texts: Sequence[str],
    targets: Sequence[Any],
    labels: Sequence[str] | None,
    seed: int,
    evaluate: bool,
) -> Model:
    texts, targets, taxonomy = _normalise(task_type, texts, targets, labels)
    if len(texts) < MIN_EXAMPLES:
        raise NotEnoughData(
            f"needs at least {MIN_EXAMPLES} annotated datapoints to train a model, has {len(texts)}"
        )
    seed = int(seed)
    version = _digest(task_type, texts, targets, taxonomy, seed)
    skipped = {"evaluation": "skipped"}

    if task_type == "classification":
        state = _fit_classifier(texts, targets, taxonomy, seed)
        metrics = _classification_metrics(texts, targets, taxonomy, seed) if evaluate else skipped
        metrics = {"train_size": len(texts), "label_counts": _counts(targets, taxonomy), **metrics}
    elif task_type == "multilabel_classification":
        state = _fit_multilabel(texts, targets, taxonomy, seed)
        metrics = _multilabel_metrics(texts, targets, taxonomy, seed) if evaluate else skipped
        flat = [label for t in targets for label in t]
        metrics = {"train_size": len(texts), "label_counts": _counts(flat, taxonomy), **metrics}
    else:
        from hlops.server import ml_tagging

        state, metrics = ml_tagging.train(texts, targets, taxonomy, seed, evaluate)
        flat = [s["label"] for t in targets for s in t]
        metrics = {"train_size": len(texts), "label_counts": _counts(flat, taxonomy), **metrics}
    meta = {
        "algorithm": ALGORITHM,
        "task_type": task_type,
        "labels": list(taxonomy),
        "version": version,
        "seed": seed,
        "metrics": metrics,
        **state["meta"],
    }
    return Model._build(meta, state["arrays"])


def fingerprint(
    task_type: str,
    texts: Sequence[str],
    targets: Sequence[Any],
    labels: Sequence[str] | None = None,
    seed: int = 0,
) -> str:
    """The ``version`` that :func:`train` gives a model trained on these arguments: a
    digest of the algorithm, task, taxonomy, seed and examples (in order; targets in normal
    form, so span or multilabel order does not matter). Compare it with a stored model's
    ``version`` to skip retraining when nothing changed. Raises like :func:`train` on
    malformed input (but not for fewer than :data:`MIN_EXAMPLES` examples)."""
    texts, targets, taxonomy = _normalise(task_type, texts, targets, labels)
    return _digest(task_type, texts, targets, taxonomy, int(seed))


def _normalise(
    task_type: str, texts: Sequence[Any], targets: Sequence[Any], labels: Sequence[str] | None
) -> tuple[list[str], list[Any], list[str]]:
    """Checked texts, targets in normal form, and the taxonomy."""
    if task_type not in TASK_TYPES:
        raise ValueError(f"unknown task_type {task_type!r}; expected one of {', '.join(TASK_TYPES)}")
    texts = _check_texts(texts)
    if len(targets) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(targets)} targets")
    if task_type == "sequence_tagging":
        from hlops.server import ml_tagging

        targets = [ml_tagging.check_spans(t, text, i) for i, (text, t) in enumerate(zip(texts, targets))]
        seen = sorted({s["label"] for t in targets for s in t})
    elif task_type == "classification":
        targets = [_check_label(t, i) for i, t in enumerate(targets)]
        seen = sorted(set(targets))
    else:
        targets = [_check_label_list(t, i) for i, t in enumerate(targets)]
        seen = sorted({label for t in targets for label in t})
    return texts, targets, _taxonomy(labels, seen)


def _digest(task_type: str, texts: list[str], targets: list[Any], taxonomy: list[str], seed: int) -> str:
    payload = orjson.dumps([ALGORITHM, task_type, taxonomy, seed, texts, targets], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(payload).hexdigest()[:16]


class Model:
    """A trained model of one output. Immutable; safe to share between threads.

    Attributes: ``task_type``, ``labels`` (the taxonomy, a tuple), ``version`` (see
    :func:`fingerprint`), ``seed``, ``metrics`` (a copy of a dict: ``train_size``,
    ``label_counts``, ``evaluation`` -- how it was evaluated, if at all -- and the scores;
    see docs/models.md).
    """

    __slots__ = ("_meta", "_arrays", "_impl")

    def __init__(self) -> None:  # pragma: no cover - use train() / from_bytes()
        raise TypeError("use hlops.server.ml.train() or Model.from_bytes()")

    @classmethod
    def _build(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Model:
        self = object.__new__(cls)
        self._meta = meta
        self._arrays = arrays
        task = meta["task_type"]
        if task == "classification":
            self._impl = _Classifier(meta, arrays)
        elif task == "multilabel_classification":
            self._impl = _Multilabel(meta, arrays)
        elif task == "sequence_tagging":
            from hlops.server import ml_tagging

            self._impl = ml_tagging.Tagger(meta, arrays)
        else:
            raise ValueError(f"unknown task_type {task!r} in model")
        return self

    task_type = property(lambda self: self._meta["task_type"])
    labels = property(lambda self: tuple(self._meta["labels"]))
    version = property(lambda self: self._meta["version"])
    seed = property(lambda self: self._meta["seed"])
    metrics = property(lambda self: _deep_copy(self._meta["metrics"]))

    def predict(self, texts: Sequence[str], n_best: int = 1) -> list[list[dict[str, Any]]]:
        """One ``value`` list per text (see the module docstring for its shape per task).
        ``n_best`` >= 1; for classification it is capped at the taxonomy's size."""
        if isinstance(n_best, bool) or not isinstance(n_best, int) or n_best < 1:
            raise ValueError(f"n_best must be a positive integer, got {n_best!r}")
        texts = _check_texts(texts)
        if not texts:
            return []
        return self._impl.predict(texts, n_best)

    def to_bytes(self) -> bytes:
        return _pack(self._meta, self._arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> Model:
        meta, arrays = _unpack(data)
        if meta.get("algorithm") != ALGORITHM:
            raise ValueError(
                f"model was trained by {meta.get('algorithm')!r}, this server runs {ALGORITHM!r}; retrain it"
            )
        try:
            return cls._build(meta, arrays)
        except (KeyError, TypeError, IndexError, AttributeError) as exc:
            raise ValueError(f"corrupt model: {exc!r}") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Model) and self.to_bytes() == other.to_bytes()

    def __hash__(self) -> int:
        return hash(self.version)

    def __repr__(self) -> str:
        return (
            f"<Model {self.task_type} version={self.version} labels={len(self.labels)} "
            f"train_size={self._meta['metrics'].get('train_size')}>"
        )


# --------------------------------------------------------------------------- checks


def _check_texts(texts: Sequence[Any]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings, not one string")
    out = []
    for i, t in enumerate(texts):
        if t is None:
            t = ""
        elif not isinstance(t, str):
            raise TypeError(f"texts[{i}] must be a string, got {type(t).__name__}")
        out.append(t)
    return out


def _check_label(t: Any, i: int) -> str:
    if not isinstance(t, str) or not t:
        raise ValueError(f"targets[{i}] must be a non-empty label string")
    return t


def _check_label_list(t: Any, i: int) -> list[str]:
    if isinstance(t, str):
        t = [t]
    if not isinstance(t, (list, tuple)):
        raise ValueError(f"targets[{i}] must be a list of label strings")
    for label in t:
        _check_label(label, i)
    return sorted(set(t))


def _taxonomy(labels: Sequence[str] | None, seen: list[str]) -> list[str]:
    if labels is None:
        return seen
    if isinstance(labels, str):
        raise TypeError("labels must be a list of strings, not one string")
    taxonomy: list[str] = []
    for label in labels:
        if not isinstance(label, str) or not label:
            raise ValueError("labels must be non-empty strings")
        if label not in taxonomy:
            taxonomy.append(label)
    unknown = [label for label in seen if label not in taxonomy]
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:10])
        raise ValueError(f"annotations use labels outside the output's taxonomy: {shown}")
    return taxonomy


def _counts(values: Sequence[str], taxonomy: Sequence[str]) -> dict[str, int]:
    c = Counter(values)
    return {label: c.get(label, 0) for label in taxonomy}


def _deep_copy(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value))


# --------------------------------------------------------------------------- text features


def _vectorizer(params: Mapping[str, Any], vocabulary: list[str] | None = None) -> CountVectorizer:
    kw = {k: v for k, v in params.items() if k != "max_features"}
    kw["ngram_range"] = tuple(kw["ngram_range"])
    if vocabulary is None:
        return CountVectorizer(**kw, max_features=params.get("max_features"), dtype=np.float64)
    return CountVectorizer(**kw, vocabulary=vocabulary, dtype=np.float64)


def _fit_words(params: Mapping[str, Any], texts: list[str]) -> tuple[list[str], sp.csr_matrix]:
    """Word n-gram vocabulary (in column order) and counts of ``texts``."""
    vec = _vectorizer(params)
    try:
        counts = vec.fit_transform(texts).tocsr()
    except ValueError:  # empty vocabulary: every text empty or without a word
        return [], sp.csr_matrix((len(texts), 0))
    vocab = [""] * len(vec.vocabulary_)
    for term, j in vec.vocabulary_.items():
        vocab[j] = term
    return vocab, counts


_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = np.uint64(0x100000001B3)


def char_ngram_ids(texts: Sequence[str], lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Every character n-gram (``lo`` <= n <= ``hi``) of every text, as (text index,
    64-bit id) arrays, computed with numpy instead of a Python loop per n-gram.

    The n-grams are scikit-learn's ``char_wb`` ones: the text is lowercased and split on
    whitespace, each word padded with one space on both sides, n-grams never cross words.
    An n-gram's id is the 64-bit FNV-1a hash of its code points and its length, so two
    different n-grams share an id with probability ~1e-19 per pair (~1e-8 for a million
    distinct n-grams): the vocabulary stores ids, not strings.
    """
    pieces, lengths = [], []
    for t in texts:
        # NUL separates words (and texts); an n-gram containing it is dropped.
        piece = "\0" + "\0".join(f" {w} " for w in t.lower().split()) + "\0"
        pieces.append(piece)
        lengths.append(len(piece))
    codes = np.frombuffer("".join(pieces).encode("utf-32-le"), dtype="<u4").astype(np.uint64)
    owner = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
    seps = np.concatenate([[0], np.cumsum(codes == 0)])
    rows, ids = [], []
    for n in range(lo, hi + 1):
        m = len(codes) - n + 1
        if m <= 0:
            continue
        h = np.full(m, _FNV_OFFSET ^ n, dtype=np.uint64)
        for k in range(n):
            h = (h ^ codes[k : k + m]) * _FNV_PRIME
        ok = seps[n : n + m] == seps[:m]  # no separator inside the window
        rows.append(owner[:m][ok])
        ids.append(h[ok])
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint64)
    return np.concatenate(rows), np.concatenate(ids)


def _char_counts(texts: Sequence[str], params: Mapping[str, Any], vocab: np.ndarray) -> sp.csr_matrix:
    """Counts of the n-grams of ``vocab`` (sorted ids) in ``texts``."""
    lo, hi = params["ngram_range"]
    rows, ids = char_ngram_ids(texts, lo, hi)
    if len(vocab) == 0 or len(ids) == 0:
        return sp.csr_matrix((len(texts), len(vocab)))
    cols = np.searchsorted(vocab, ids)
    cols[cols == len(vocab)] = 0
    known = vocab[cols] == ids
    x = sp.csr_matrix(
        (np.ones(int(known.sum())), (rows[known], cols[known])), shape=(len(texts), len(vocab))
    )
    x.sum_duplicates()
    return x


def _fit_chars(params: Mapping[str, Any], texts: list[str]) -> tuple[np.ndarray, sp.csr_matrix]:
    """The char n-gram vocabulary — sorted ids of the ``max_features`` n-grams found in the
    most texts (ties: smaller id first) — and the counts of ``texts`` over it (equal to
    :func:`_char_counts` of the same texts)."""
    lo, hi = params["ngram_range"]
    rows, ids = char_ngram_ids(texts, lo, hi)
    if len(ids) == 0:
        return np.zeros(0, dtype=np.uint64), sp.csr_matrix((len(texts), 0))
    uniq, cols = np.unique(ids, return_inverse=True)
    x = sp.csr_matrix((np.ones(len(ids)), (rows, cols.ravel())), shape=(len(texts), len(uniq)))
    x.sum_duplicates()
    limit = params.get("max_features")
    if limit is not None and len(uniq) > limit:
        df = np.bincount(x.indices, minlength=len(uniq))
        keep = np.sort(np.lexsort((uniq, -df))[:limit])
        uniq, x = uniq[keep], x[:, keep].tocsr()
        x.sum_duplicates()
    return uniq, x


def _idf(counts: sp.csr_matrix) -> np.ndarray:
    """Smoothed inverse document frequency, as scikit-learn's TfidfTransformer."""
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    return np.log((1 + counts.shape[0]) / (1 + df)) + 1.0


def _tfidf(blocks: list[tuple[sp.csr_matrix, np.ndarray]], n_rows: int) -> sp.csr_matrix:
    """Sublinear tf times idf per block, blocks side by side, rows scaled to unit length."""
    parts = []
    for counts, idf in blocks:
        x = counts.astype(np.float64, copy=True)
        x.data = np.log(x.data) + 1.0
        parts.append(x @ sp.diags(idf))
    if not parts:
        return sp.csr_matrix((n_rows, 0))
    x = sp.hstack(parts, format="csr")
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms) @ x)


class _TextFeatures:
    """TF-IDF (sublinear tf, smoothed idf, l2 norm) over word n-grams and character
    n-grams, with fixed vocabularies: the same transform at training and after loading."""

    def __init__(self, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]):
        self._word = _vectorizer(meta["word_params"], meta["word_vocab"]) if meta["word_vocab"] else None
        self._word_idf = arrays["word_idf"]
        self._char_params = meta["char_params"]
        self._char_vocab = arrays["char_vocab"]
        self._char_idf = arrays["char_idf"]

    def counts(self, texts: list[str]) -> list[tuple[sp.csr_matrix, np.ndarray]]:
        blocks = []
        if self._word is not None:
            blocks.append((self._word.transform(texts).tocsr(), self._word_idf))
        if len(self._char_vocab):
            blocks.append((_char_counts(texts, self._char_params, self._char_vocab), self._char_idf))
        return blocks

    def transform(self, texts: list[str]) -> sp.csr_matrix:
        return _tfidf(self.counts(texts), len(texts))


def _fit_text_features(texts: list[str]) -> tuple[dict[str, Any], dict[str, np.ndarray], sp.csr_matrix]:
    """Fit the vocabularies and IDFs; also return the training texts' feature matrix
    (the same matrix :class:`_TextFeatures` computes for them)."""
    word_vocab, word_counts = _fit_words(WORD_PARAMS, texts)
    char_vocab, char_counts = _fit_chars(CHAR_PARAMS, texts)
    meta: dict[str, Any] = {
        "word_params": dict(WORD_PARAMS),
        "word_vocab": word_vocab,
        "char_params": dict(CHAR_PARAMS),
    }
    arrays = {
        "word_idf": _idf(word_counts),
        "char_vocab": char_vocab,
        "char_idf": _idf(char_counts),
    }
    blocks = [(c, arrays[f"{n}_idf"]) for n, c in (("word", word_counts), ("char", char_counts)) if c.shape[1]]
    return meta, arrays, _tfidf(blocks, len(texts))


def _logreg(seed: int, c: float) -> LogisticRegression:
    # newton-cg, not the default lbfgs: with 10^5 features x classes parameters, SciPy's
    # L-BFGS-B (C port, SciPy >= 1.15) spends ~0.25 s per iteration on its own
    # bookkeeping here, 5-10x slower overall; newton-cg converges in < 10 iterations.
    return LogisticRegression(C=c, solver="newton-cg", max_iter=200, tol=1e-3, random_state=seed)


# --------------------------------------------------------------------------- classification


def _fit_classifier(texts: list[str], targets: list[str], taxonomy: list[str], seed: int) -> dict[str, Any]:
    meta, arrays, x = _fit_text_features(texts)
    classes = [label for label in taxonomy if label in set(targets)]
    y = np.array([classes.index(t) for t in targets])
    k = len(classes)
    if k == 1:
        coef = np.zeros((1, x.shape[1]))
        intercept = np.zeros(1)
    elif x.shape[1] == 0:  # no features at all: the class prior
        freq = np.bincount(y, minlength=k) / len(y)
        coef = np.zeros((1 if k == 2 else k, 0))
        intercept = np.array([math.log(freq[1] / freq[0])]) if k == 2 else np.log(freq)
    else:
        clf = _logreg(seed, C_CLASSIFIER).fit(x, y)
        coef, intercept = clf.coef_, clf.intercept_
    meta["classes"] = classes
    arrays["coef"] = np.asarray(coef, dtype=np.float32)
    arrays["intercept"] = np.asarray(intercept, dtype=np.float64)
    return {"meta": meta, "arrays": arrays}


def _class_proba(x: sp.csr_matrix, coef: np.ndarray, intercept: np.ndarray, k: int) -> np.ndarray:
    """Probabilities (rows sum to 1) over ``k`` classes from logistic-regression weights."""
    if k == 1:
        return np.ones((x.shape[0], 1))
    scores = np.asarray(x @ coef.T.astype(np.float64)) + intercept
    if k == 2:
        p1 = expit(scores[:, 0])
        return np.column_stack([1.0 - p1, p1])
    return softmax(scores, axis=1)


class _Classifier:
    def __init__(self, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]):
        self.features = _TextFeatures(meta, arrays)
        self.labels = list(meta["labels"])
        self.cols = [self.labels.index(c) for c in meta["classes"]]
        self.coef, self.intercept = arrays["coef"], arrays["intercept"]

    def proba(self, texts: list[str]) -> np.ndarray:
        """Probabilities over the whole taxonomy (unseen labels: 0)."""
        p = _class_proba(self.features.transform(texts), self.coef, self.intercept, len(self.cols))
        out = np.zeros((len(texts), len(self.labels)))
        out[:, self.cols] = p
        return out

    def predict(self, texts: list[str], n_best: int) -> list[list[dict[str, Any]]]:
        return [_ranked(row, self.labels, n_best) for row in self.proba(texts)]


def _ranked(row: np.ndarray, labels: list[str], n: int, threshold: float | None = None) -> list[dict[str, Any]]:
    order = sorted(range(len(labels)), key=lambda j: (-row[j], j))
    if threshold is not None:
        n = max(n, sum(1 for j in order if row[j] >= threshold))
    return [{"label": labels[j], "confidence": round(float(row[j]), 6)} for j in order[:n]]


def _classification_metrics(texts: list[str], targets: list[str], taxonomy: list[str], seed: int) -> dict[str, Any]:
    plan = _eval_splits(len(texts), targets, seed)
    if plan is None:
        return {"evaluation": f"none (fewer than {MIN_EVAL_EXAMPLES} examples or a single class)"}
    how, splits = plan
    evaluated = [i for _, test_idx in splits for i in test_idx]
    pred: list[str | None] = [None] * len(texts)
    for train_idx, test_idx in splits:
        state = _fit_classifier([texts[i] for i in train_idx], [targets[i] for i in train_idx], taxonomy, seed)
        model = _Classifier({**state["meta"], "labels": taxonomy}, state["arrays"])
        probs = model.proba([texts[i] for i in test_idx])
        for i, row in zip(test_idx, probs):
            pred[i] = taxonomy[int(np.argmax(row))]
    gold = [targets[i] for i in evaluated]
    pred = [pred[i] for i in evaluated]
    acc = sum(p == t for p, t in zip(pred, gold)) / len(gold)
    # The majority class of the training data, scored on the evaluated examples.
    top = Counter(targets).most_common(1)[0][0]
    majority = sum(t == top for t in gold) / len(gold)
    f1s = []
    for label in sorted(set(gold) | set(pred)):
        tp = sum(p == label and t == label for p, t in zip(pred, gold))
        fp = sum(p == label and t != label for p, t in zip(pred, gold))
        fn = sum(p != label and t == label for p, t in zip(pred, gold))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return {
        "evaluation": how,
        "evaluated": len(gold),
        "accuracy": round(acc, 4),
        "macro_f1": round(sum(f1s) / len(f1s), 4),
        "majority_baseline_accuracy": round(majority, 4),
    }


def _eval_splits(
    n: int, strata: Sequence[Any] | None, seed: int
) -> tuple[str, list[tuple[list[int], list[int]]]] | None:
    """How a model is evaluated: seeded 5-fold cross-validation up to
    :data:`CV_MAX_EXAMPLES` examples, a seeded 80/20 hold-out above (one extra fit, so a
    large retrain costs about twice a plain fit). Stratified by ``strata`` when every class
    allows it. ``None`` when there is too little data to estimate anything."""
    if n < MIN_EVAL_EXAMPLES:
        return None
    idx = np.arange(n)
    stratify = None
    if strata is not None:
        counts = Counter(strata)
        if len(counts) < 2:
            return None
        if min(counts.values()) >= 5:
            stratify = list(strata)
    if n <= CV_MAX_EXAMPLES:
        if stratify is not None:
            folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed).split(idx, stratify)
        else:
            folds = KFold(n_splits=5, shuffle=True, random_state=seed).split(idx)
        return "5-fold cross-validation", [(a.tolist(), b.tolist()) for a, b in folds]
    a, b = train_test_split(idx, test_size=0.2, random_state=seed, stratify=stratify)
    return "80/20 hold-out", [(sorted(a.tolist()), sorted(b.tolist()))]


# --------------------------------------------------------------------------- multilabel


def _fit_multilabel(texts: list[str], targets: list[list[str]], taxonomy: list[str], seed: int) -> dict[str, Any]:
    meta, arrays, x = _fit_text_features(texts)
    coef = np.zeros((len(taxonomy), x.shape[1]))
    intercept = np.zeros(len(taxonomy))
    constant = np.full(len(taxonomy), -1.0)  # -1: learned; 0 or 1: always that probability
    for j, label in enumerate(taxonomy):
        y = np.array([label in t for t in targets], dtype=int)
        if y.min() == y.max():
            constant[j] = float(y[0])
        elif x.shape[1] == 0:
            intercept[j] = math.log(y.mean() / (1 - y.mean()))
        else:
            clf = _logreg(seed, C_CLASSIFIER).fit(x, y)
            coef[j], intercept[j] = clf.coef_[0], clf.intercept_[0]
    arrays["coef"] = coef.astype(np.float32)
    arrays["intercept"] = intercept
    arrays["constant"] = constant
    return {"meta": meta, "arrays": arrays}


class _Multilabel:
    def __init__(self, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]):
        self.features = _TextFeatures(meta, arrays)
        self.labels = list(meta["labels"])
        self.coef, self.intercept, self.constant = arrays["coef"], arrays["intercept"], arrays["constant"]

    def proba(self, texts: list[str]) -> np.ndarray:
        """Independent per-label probabilities."""
        x = self.features.transform(texts)
        p = expit(np.asarray(x @ self.coef.T.astype(np.float64)) + self.intercept)
        fixed = self.constant >= 0
        p[:, fixed] = self.constant[fixed]
        return p

    def predict(self, texts: list[str], n_best: int) -> list[list[dict[str, Any]]]:
        return [_ranked(row, self.labels, n_best, THRESHOLD) for row in self.proba(texts)]


def _multilabel_metrics(texts: list[str], targets: list[list[str]], taxonomy: list[str], seed: int) -> dict[str, Any]:
    plan = _eval_splits(len(texts), None, seed)
    if plan is None:
        return {"evaluation": f"none (fewer than {MIN_EVAL_EXAMPLES} examples)"}
    how, splits = plan
    evaluated = [i for _, test_idx in splits for i in test_idx]
    pred: list[set[str]] = [set() for _ in texts]
    for train_idx, test_idx in splits:
        state = _fit_multilabel([texts[i] for i in train_idx], [targets[i] for i in train_idx], taxonomy, seed)
        model = _Multilabel({**state["meta"], "labels": taxonomy}, state["arrays"])
        for i, row in zip(test_idx, model.proba([texts[i] for i in test_idx])):
            pred[i] = {taxonomy[j] for j in range(len(taxonomy)) if row[j] >= THRESHOLD}
    gold = [set(targets[i]) for i in evaluated]
    pred = [pred[i] for i in evaluated]
    tp = sum(len(p & t) for p, t in zip(pred, gold))
    fp = sum(len(p - t) for p, t in zip(pred, gold))
    fn = sum(len(t - p) for p, t in zip(pred, gold))
    return {
        "evaluation": how,
        "evaluated": len(gold),
        "micro_f1": round(2 * tp / (2 * tp + fp + fn), 4) if tp else 0.0,
        "subset_accuracy": round(sum(p == t for p, t in zip(pred, gold)) / len(gold), 4),
    }


# --------------------------------------------------------------------------- serialisation

_MAGIC = b"HLOPS-ML\x00"
_FORMAT = 1
_DTYPES = {"<f8": np.float64, "<f4": np.float32, "<i8": np.int64, "<i4": np.int32, "<u8": np.uint64}


def _pack(meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> bytes:
    entries, chunks, offset = [], [], 0
    for name in sorted(arrays):
        a = np.asarray(arrays[name])
        dtype = a.dtype.newbyteorder("<")
        code = dtype.str
        if code not in _DTYPES:
            raise TypeError(f"cannot store an array of dtype {a.dtype} ({name})")
        raw = np.ascontiguousarray(a, dtype=dtype).tobytes()
        entries.append({"name": name, "dtype": code, "shape": list(a.shape), "offset": offset, "nbytes": len(raw)})
        chunks.append(raw)
        offset += len(raw)
    header = orjson.dumps({"format": _FORMAT, "meta": meta, "arrays": entries}, option=orjson.OPT_SORT_KEYS)
    return _MAGIC + len(header).to_bytes(8, "big") + header + b"".join(chunks)


def _unpack(data: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    data = bytes(data)
    if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + 8:
        raise ValueError("not an hlops model (bad magic bytes)")
    pos = len(_MAGIC)
    hlen = int.from_bytes(data[pos : pos + 8], "big")
    pos += 8
    if hlen > len(data) - pos:
        raise ValueError("truncated model header")
    try:
        header = orjson.loads(data[pos : pos + hlen])
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"corrupt model header: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != _FORMAT:
        raise ValueError(f"unsupported model format {header.get('format') if isinstance(header, dict) else None!r}")
    body = memoryview(data)[pos + hlen :]
    arrays = {}
    try:
        for e in header["arrays"]:
            dtype = np.dtype(_DTYPES[e["dtype"]]).newbyteorder("<")
            shape = tuple(int(s) for s in e["shape"])
            start, nbytes = int(e["offset"]), int(e["nbytes"])
            if start < 0 or start + nbytes > len(body) or nbytes != math.prod(shape) * dtype.itemsize:
                raise ValueError(f"array {e['name']!r} out of bounds")
            a = np.frombuffer(body[start : start + nbytes], dtype=dtype).reshape(shape)
            arrays[str(e["name"])] = a.astype(a.dtype.newbyteorder("="))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"corrupt model header: {exc!r}") from None
    meta = header["meta"]
    if not isinstance(meta, dict):
        raise ValueError("corrupt model header: meta")
    return meta, arrays
