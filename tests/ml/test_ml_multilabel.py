"""Multilabel classification: one-vs-rest, the 0.5 decision, n_best padding."""

from __future__ import annotations

import pytest

from hlops.server import ml

TAXONOMY = ["billing", "shipping", "returns", "account", "technical"]


@pytest.fixture(scope="module")
def model(tickets):
    texts, targets = tickets
    return ml.train("multilabel_classification", texts[:150], targets[:150], labels=TAXONOMY, seed=0)


def test_learns(tickets, model):
    texts, targets = tickets
    tp = fp = fn = exact = 0
    for value, gold in zip(model.predict(texts[150:]), targets[150:]):
        pred = {v["label"] for v in value if v["confidence"] >= 0.5}
        tp, fp, fn = tp + len(pred & set(gold)), fp + len(pred - set(gold)), fn + len(set(gold) - pred)
        exact += pred == set(gold)
    f1 = 2 * tp / (2 * tp + fp + fn)
    assert f1 >= 0.85, f1
    assert exact / 50 >= 0.6
    m = model.metrics
    assert m["evaluation"] == "5-fold cross-validation" and m["micro_f1"] >= 0.8
    assert m["label_counts"]["technical"] == 0


def test_decision_and_n_best(tickets, model):
    texts, _ = tickets
    for n_best in (1, 2, 5, 9):
        for value in model.predict(texts[150:170], n_best=n_best):
            confs = [v["confidence"] for v in value]
            above = sum(c >= 0.5 for c in confs)
            assert confs == sorted(confs, reverse=True)
            # Every label over the threshold, padded up to n_best (capped at the taxonomy).
            assert len(value) == max(above, min(n_best, len(TAXONOMY)))
            assert all(v["label"] in TAXONOMY for v in value)
            assert len({v["label"] for v in value}) == len(value)


def test_two_topics_found(model):
    value = model.predict(["I was charged twice for the same order. My parcel has not arrived yet."])[0]
    assert {v["label"] for v in value if v["confidence"] >= 0.5} == {"billing", "shipping"}


def test_never_and_always_present_labels(tickets):
    texts, targets = tickets
    targets = [sorted(set(t) | {"always"}) for t in targets[:40]]
    m = ml.train("multilabel_classification", texts[:40], targets, labels=["always", "never", *TAXONOMY[:4]])
    for value in m.predict(["", "random words"], n_best=6):
        conf = {v["label"]: v["confidence"] for v in value}
        assert conf["always"] == 1.0 and conf["never"] == 0.0


def test_empty_targets_and_str_target(tickets):
    texts, targets = tickets
    targets = [[] if i % 3 == 0 else t for i, t in enumerate(targets[:30])]
    targets[1] = targets[1][0]  # a bare label string is a one-label list
    m = ml.train("multilabel_classification", texts[:30], targets)
    assert set(m.labels) <= set(TAXONOMY)
    assert m.version == ml.fingerprint("multilabel_classification", texts[:30], [t if isinstance(t, list) else [t] for t in targets])


def test_all_targets_empty(tickets):
    texts, _ = tickets
    m = ml.train("multilabel_classification", texts[:12], [[]] * 12, labels=["a", "b"])
    value = m.predict(["hello"], n_best=1)[0]
    assert value == [{"label": "a", "confidence": 0.0}]


def test_round_trip_and_determinism(tickets, model):
    texts, targets = tickets
    loaded = ml.Model.from_bytes(model.to_bytes())
    assert loaded == model and loaded.task_type == "multilabel_classification"
    assert loaded.predict(texts[150:], n_best=3) == model.predict(texts[150:], n_best=3)
    # Label order inside a target does not change the model.
    shuffled = [list(reversed(t)) for t in targets[:150]]
    again = ml.train("multilabel_classification", texts[:150], shuffled, labels=TAXONOMY, seed=0)
    assert again.to_bytes() == model.to_bytes()


def test_bad_targets(tickets):
    texts, targets = tickets
    with pytest.raises(ValueError, match=r"targets\[0\]"):
        ml.train("multilabel_classification", texts[:20], [{"billing": 1}] + targets[1:20])
    with pytest.raises(ValueError, match="outside the output's taxonomy"):
        ml.train("multilabel_classification", texts[:20], targets[:20], labels=["billing"])
