"""Single-label classification: shapes, confidences, n_best, determinism, edge cases."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from sklearn.feature_extraction.text import CountVectorizer

from hlops.server import ml

SEED_TEXTS = [
    "The sound quality of these headphones were so disappointing",
    "OMG! if only my phone camera could be this good",
]


@pytest.fixture(scope="module")
def model(sentiment):
    texts, labels = sentiment
    return ml.train("classification", texts[:180], labels[:180], seed=0)


def test_value_shape_and_confidences(model):
    out = model.predict(SEED_TEXTS + [""], n_best=3)
    assert len(out) == 3
    for value in out:
        assert [set(v) for v in value] == [{"label", "confidence"}] * 3
        assert {v["label"] for v in value} == {"negative", "neutral", "positive"}
        confs = [v["confidence"] for v in value]
        assert confs == sorted(confs, reverse=True)
        assert all(0.0 <= c <= 1.0 for c in confs)
        assert math.isclose(sum(confs), 1.0, abs_tol=1e-5)


@pytest.mark.parametrize("n_best, expected", [(1, 1), (2, 2), (3, 3), (10, 3)])
def test_n_best(model, n_best, expected):
    for value in model.predict(SEED_TEXTS, n_best=n_best):
        assert len(value) == expected
    # The first entry does not depend on n_best.
    assert model.predict(SEED_TEXTS, n_best=n_best)[0][0] == model.predict(SEED_TEXTS)[0][0]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_n_best_must_be_positive_int(model, bad):
    with pytest.raises(ValueError, match="n_best"):
        model.predict(SEED_TEXTS, n_best=bad)


def test_learns_above_majority(sentiment, model):
    texts, labels = sentiment
    held_x, held_y = texts[180:], labels[180:]
    pred = [v[0]["label"] for v in model.predict(held_x)]
    acc = sum(p == y for p, y in zip(pred, held_y)) / len(held_y)
    majority = Counter(labels[:180]).most_common(1)[0][0]
    base = sum(y == majority for y in held_y) / len(held_y)
    assert acc >= 0.85 and acc > base + 0.3, (acc, base)
    assert model.predict([SEED_TEXTS[0]])[0][0]["label"] == "negative"


def test_deterministic(sentiment, model):
    texts, labels = sentiment
    again = ml.train("classification", texts[:180], labels[:180], seed=0)
    assert again.to_bytes() == model.to_bytes()
    assert again == model
    assert again.predict(texts[180:], n_best=3) == model.predict(texts[180:], n_best=3)
    assert again.version == model.version == ml.fingerprint("classification", texts[:180], labels[:180])


def test_metrics(model):
    m = model.metrics
    assert m["train_size"] == 180
    assert sum(m["label_counts"].values()) == 180
    assert m["evaluation"] == "5-fold cross-validation" and m["evaluated"] == 180
    assert 0.8 <= m["accuracy"] <= 1.0 and m["accuracy"] > m["majority_baseline_accuracy"]
    m["train_size"] = -1  # a copy: the model is immutable
    assert model.metrics["train_size"] == 180


def test_evaluation_skipped_and_too_small(sentiment):
    texts, labels = sentiment
    assert ml.train("classification", texts[:40], labels[:40], evaluate=False).metrics["evaluation"] == "skipped"
    assert ml.train("classification", texts[:12], labels[:12]).metrics["evaluation"].startswith("none")


def test_round_trip(sentiment, model):
    texts, _ = sentiment
    blob = model.to_bytes()
    loaded = ml.Model.from_bytes(blob)
    assert loaded.to_bytes() == blob
    assert loaded == model
    assert (loaded.task_type, loaded.labels, loaded.version, loaded.seed, loaded.metrics) == (
        model.task_type, model.labels, model.version, model.seed, model.metrics)
    assert loaded.predict(texts, n_best=3) == model.predict(texts, n_best=3)


@pytest.mark.parametrize("n", [0, 1, 9])
def test_fewer_than_ten_examples(sentiment, n):
    texts, labels = sentiment
    with pytest.raises(ml.NotEnoughData, match="at least 10 annotated datapoints") as exc:
        ml.train("classification", texts[:n], labels[:n])
    assert isinstance(exc.value, ValueError)


def test_exactly_ten_examples(sentiment):
    texts, labels = sentiment
    m = ml.train("classification", texts[:10], labels[:10])
    assert len(m.predict(["anything"], n_best=5)[0]) == len(set(labels[:10]))


def test_single_class():
    texts = [f"Order {i} arrived, thanks!" for i in range(12)]
    m = ml.train("classification", texts, ["positive"] * 12, labels=["positive", "negative", "neutral"])
    value = m.predict(["It broke on day one.", ""], n_best=3)
    for v in value:
        assert v[0] == {"label": "positive", "confidence": 1.0}
        assert [x["confidence"] for x in v[1:]] == [0.0, 0.0]
        assert [x["label"] for x in v[1:]] == ["negative", "neutral"]  # ties: taxonomy order


def test_taxonomy_with_unseen_labels(sentiment):
    texts, labels = sentiment
    taxonomy = ["positive", "negative", "neutral", "mixed", "spam"]
    m = ml.train("classification", texts[:60], labels[:60], labels=taxonomy, evaluate=False)
    assert m.labels == tuple(taxonomy)
    for value in m.predict(texts[60:70], n_best=5):
        conf = {v["label"]: v["confidence"] for v in value}
        assert set(conf) == set(taxonomy)
        assert conf["mixed"] == conf["spam"] == 0.0
        assert math.isclose(sum(conf.values()), 1.0, abs_tol=1e-5)
        assert value[0]["label"] in {"positive", "negative", "neutral"}


def test_two_classes(sentiment):
    texts, labels = sentiment
    pairs = [(t, y) for t, y in zip(texts, labels) if y != "neutral"][:40]
    m = ml.train("classification", [t for t, _ in pairs], [y for _, y in pairs], labels=["positive", "negative", "neutral"])
    for value in m.predict(SEED_TEXTS, n_best=3):
        assert math.isclose(sum(v["confidence"] for v in value), 1.0, abs_tol=1e-5)
        assert value[-1] == {"label": "neutral", "confidence": 0.0}
    assert m.predict([SEED_TEXTS[0]])[0][0]["label"] == "negative"


def test_label_outside_taxonomy(sentiment):
    texts, labels = sentiment
    with pytest.raises(ValueError, match="outside the output's taxonomy: 'neutral'"):
        ml.train("classification", texts[:30], labels[:30], labels=["positive", "negative"])


def test_bad_inputs(sentiment):
    texts, labels = sentiment
    with pytest.raises(ValueError, match="unknown task_type"):
        ml.train("regression", texts[:20], labels[:20])
    with pytest.raises(ValueError, match="20 texts but 19 targets"):
        ml.train("classification", texts[:20], labels[:19])
    with pytest.raises(ValueError, match=r"targets\[3\]"):
        ml.train("classification", texts[:20], labels[:3] + [""] + labels[4:20])
    with pytest.raises(TypeError, match=r"texts\[2\]"):
        ml.train("classification", texts[:2] + [42] + texts[3:20], labels[:20])
    with pytest.raises(TypeError, match="not one string"):
        ml.train("classification", "abc", ["x"] * 3)


def test_empty_and_unicode_texts():
    texts = ["", "  ", "😀😀 love it 😀", "très bien, merci beaucoup", "非常好，谢谢", "ужасно, сломалось",
             "terrible 💩", "", "great great", "awful awful", "Ça marche très bien", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 broken"]
    labels = ["neutral", "neutral", "positive", "positive", "positive", "negative",
              "negative", "neutral", "positive", "negative", "positive", "negative"]
    m = ml.train("classification", texts, labels)
    out = m.predict(["", "😀", "非常好", "\x00\u200b", "a" * 10_000], n_best=3)
    assert all(math.isclose(sum(v["confidence"] for v in value), 1.0, abs_tol=1e-5) for value in out)
    assert ml.Model.from_bytes(m.to_bytes()).predict(["très bien"]) == m.predict(["très bien"])


def test_all_training_texts_empty():
    m = ml.train("classification", [""] * 12, ["a"] * 8 + ["b"] * 4)
    value = m.predict(["whatever"], n_best=2)[0]
    assert [v["label"] for v in value] == ["a", "b"]
    assert value[0]["confidence"] == pytest.approx(8 / 12, abs=1e-6)


def test_predict_edge_cases(model):
    assert model.predict([]) == []
    assert model.predict([None])[0][0]["label"] in model.labels  # None is an empty text
    with pytest.raises(TypeError):
        model.predict("one string")


def test_char_ngram_counts_match_training(sentiment):
    """The counts the vocabulary was fitted on equal the counts used at prediction."""
    texts, _ = sentiment
    for params in (ml.CHAR_PARAMS, {**ml.CHAR_PARAMS, "max_features": 300}):
        vocab, counts = ml._fit_chars(params, texts)
        again = ml._char_counts(texts, params, vocab)
        assert (counts != again).nnz == 0 and len(vocab) == counts.shape[1]
    # The same n-grams as scikit-learn's char_wb analyzer (ids instead of strings).
    sample = texts[:50] + ["ab", "Ça va? 😀 非常好", "x"]
    reference = CountVectorizer(analyzer="char_wb", ngram_range=(2, 5)).fit(sample)
    assert len(ml._fit_chars({**ml.CHAR_PARAMS, "max_features": None}, sample)[0]) == len(reference.vocabulary_)
