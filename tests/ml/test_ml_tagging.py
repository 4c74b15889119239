"""Sequence tagging: character spans in, valid token-aligned spans out."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ml_data import LOCS, PERSONS, make_entities

from hlops.server import ml, ml_tagging

TAXONOMY = ["PERSON", "ORG", "LOC", "PRODUCT"]


@pytest.fixture(scope="module")
def model(entities):
    texts, spans = entities
    return ml.train("sequence_tagging", texts[:150], spans[:150], labels=TAXONOMY, seed=0)


def _key(spans):
    return {(s["start"], s["end"], s["label"]) for s in spans}


def _check_valid(text, value):
    bounds = ml_tagging.tokenize(text)
    starts, ends = {a for a, _ in bounds}, {b for _, b in bounds}
    last_end = 0
    for s in value:
        assert set(s) == {"start", "end", "label", "confidence"}
        assert 0 <= s["start"] < s["end"] <= len(text)
        assert s["start"] in starts and s["end"] in ends  # token boundaries
        assert s["start"] >= last_end  # sorted, no overlaps
        last_end = s["end"]
        assert 0.0 < s["confidence"] <= 1.0


def test_tokenize():
    text = "Hi Apple's  café-bar, São Paulo 😀 3.5"
    assert [text[a:b] for a, b in ml_tagging.tokenize(text)] == [
        "Hi", "Apple", "'", "s", "café", "-", "bar", ",", "São", "Paulo", "😀", "3", ".", "5"]
    assert ml_tagging.tokenize("") == [] and ml_tagging.tokenize(" \n\t") == []


def test_learns_and_spans_valid(entities, model):
    texts, spans = entities
    out = model.predict(texts[150:])
    scores = ml_tagging.span_scores(out, spans[150:])
    assert scores["span_f1"] >= 0.9, scores
    for text, value in zip(texts[150:], out):
        _check_valid(text, value)
        assert {s["label"] for s in value} <= set(TAXONOMY)
    m = model.metrics
    assert m["evaluation"] == "5-fold cross-validation" and m["span_f1"] >= 0.85
    assert m["label_counts"]["PRODUCT"] == 0 and m["spans_skipped"] == 0


def test_unseen_names_from_context(model):
    """Names never seen in training, found from their context and shape."""
    texts, spans = make_entities(60, seed=11, persons=["Hanna Virtanen", "Kwame Mensah", "Olga Petrova"],
                                 locs=["Reykjavik", "Montevideo", "Ljubljana"])
    out = model.predict(texts)
    unseen = [(s, p) for g, p in zip(spans, out) for s in g if s["label"] in ("PERSON", "LOC")]
    found = sum((s["start"], s["end"], s["label"]) in _key(p) for s, p in unseen)
    assert found / len(unseen) >= 0.6, (found, len(unseen))


def test_seed_style_text(model):
    text = "Hi Apple! Please can you refund this item?"
    value = model.predict([text])[0]
    _check_valid(text, value)


def test_deterministic_and_round_trip(entities, model):
    texts, spans = entities
    again = ml.train("sequence_tagging", texts[:150], [list(reversed(s)) for s in spans[:150]], labels=TAXONOMY)
    assert again.to_bytes() == model.to_bytes() and again.version == model.version
    loaded = ml.Model.from_bytes(model.to_bytes())
    assert loaded == model and loaded.labels == tuple(TAXONOMY)
    assert loaded.predict(texts[150:]) == model.predict(texts[150:])
    assert model.predict(texts[150:160], n_best=3) == model.predict(texts[150:160])  # n_best: no effect


def test_widened_and_skipped_spans():
    texts = ["Apple's new office opened in Berlin today."] * 10 + ["Nothing here."] * 2
    spans = [[{"start": 0, "end": 3, "label": "ORG"},            # "App": widened to "Apple"
              {"start": 29, "end": 35, "label": "LOC"},          # "Berlin"
              {"start": 31, "end": 35, "label": "LOC"},          # overlaps: skipped
              {"start": 35, "end": 36, "label": "LOC"}]] * 10 + [[], []]  # " ": no token, skipped
    m = ml.train("sequence_tagging", texts, spans, evaluate=False)
    assert m.metrics["spans_widened"] == 10 and m.metrics["spans_skipped"] == 20
    value = m.predict(["Apple's new office opened in Berlin today."])[0]
    assert [(s["start"], s["end"], s["label"]) for s in value] == [(0, 5, "ORG"), (29, 35, "LOC")]


def test_bio_tags():
    text = "Tim Cook visited New York City"
    tokens = ml_tagging.tokenize(text)
    tags, widened, skipped = ml_tagging.bio_tags(tokens, [
        {"start": 0, "end": 8, "label": "PERSON"}, {"start": 17, "end": 30, "label": "LOC"}])
    assert tags == ["B-PERSON", "I-PERSON", "O", "B-LOC", "I-LOC", "I-LOC"]
    assert (widened, skipped) == (0, 0)


def test_viterbi_respects_bio(model):
    tagger = model._impl
    k = len(tagger.classes)
    i_org = tagger.classes.index("I-ORG")
    # Every token's most probable tag is I-ORG, which may not start a sequence.
    p = np.full((3, k), 0.01)
    p[:, i_org] = 0.9
    p = p / p.sum(axis=1, keepdims=True)
    path = [tagger.classes[t] for t in tagger._viterbi(p)]
    assert path[0] != "I-ORG"
    for prev, cur in zip(path, path[1:]):
        if cur.startswith("I-"):
            assert prev[2:] == cur[2:] and prev != "O"


def test_no_spans_in_training():
    texts = [f"Sentence number {i} has no entities." for i in range(12)]
    m = ml.train("sequence_tagging", texts, [[]] * 12, labels=TAXONOMY)
    assert m.predict(["Tim Cook visited Berlin.", ""]) == [[], []]
    assert m.metrics["evaluation"].startswith("none")


def test_empty_and_unicode(model):
    texts = ["", "   ", "😀😀😀", "Luis Fernández visitó São Paulo.", "Zürich, 東京 and Москва", "\x00\u200b"]
    out = model.predict(texts)
    assert out[0] == out[1] == []
    for text, value in zip(texts, out):
        _check_valid(text, value)


def test_bad_spans(entities):
    texts, spans = entities
    bad = [dict(s) for s in spans[0]]
    bad[0]["end"] = len(texts[0]) + 1
    with pytest.raises(ValueError, match=r"targets\[0\].*0 <= start < end"):
        ml.train("sequence_tagging", texts[:20], [bad] + spans[1:20])
    with pytest.raises(ValueError, match=r"targets\[1\]"):
        ml.train("sequence_tagging", texts[:20], [spans[0], "PERSON"] + spans[2:20])
    with pytest.raises(ValueError, match="outside the output's taxonomy"):
        ml.train("sequence_tagging", texts[:20], spans[:20], labels=["PERSON"])
    with pytest.raises(ml.NotEnoughData):
        ml.train("sequence_tagging", texts[:9], spans[:9])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=80) | st.builds(" ".join, st.lists(st.sampled_from(PERSONS + LOCS + ["in", "met", "."]), max_size=12)))
def test_any_text_gives_valid_spans(model, text):
    _check_valid(text, model.predict([text])[0])


@settings(max_examples=25, deadline=None)
@given(st.lists(st.text(max_size=40), min_size=10, max_size=14), st.data())
def test_training_on_any_text(texts, data):
    """Random texts and random valid spans train without error and predict valid spans."""
    spans = []
    for text in texts:
        bounds = ml_tagging.tokenize(text)
        chosen = data.draw(st.lists(st.sampled_from(bounds), max_size=2, unique=True)) if bounds else []
        spans.append([{"start": a, "end": b, "label": data.draw(st.sampled_from(["A", "B"]))} for a, b in chosen])
    m = ml.train("sequence_tagging", texts, spans, evaluate=False)
    for text, value in zip(texts, m.predict(texts)):
        _check_valid(text, value)


def test_every_token_inside_a_span():
    """Found by hypothesis: no token tagged O leaves a single class to learn."""
    texts = [f"Name{i}" for i in range(10)]
    m = ml.train("sequence_tagging", texts, [[{"start": 0, "end": len(t), "label": "A"}] for t in texts])
    assert m.predict(["Other", "two words"]) == [
        [{"start": 0, "end": 5, "label": "A", "confidence": 1.0}],
        [{"start": 0, "end": 3, "label": "A", "confidence": 1.0}, {"start": 4, "end": 9, "label": "A", "confidence": 1.0}],
    ]
