"""The model container: bytes format, versions, sharing between threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest

from hlops.server import ml


@pytest.fixture(scope="module")
def model(sentiment):
    texts, labels = sentiment
    return ml.train("classification", texts[:60], labels[:60], evaluate=False)


def _header(blob: bytes) -> tuple[int, dict]:
    pos = len(ml._MAGIC)
    n = int.from_bytes(blob[pos : pos + 8], "big")
    return pos + 8 + n, orjson.loads(blob[pos + 8 : pos + 8 + n])


def _with_header(blob: bytes, header: dict) -> bytes:
    end, _ = _header(blob)
    raw = orjson.dumps(header, option=orjson.OPT_SORT_KEYS)
    return ml._MAGIC + len(raw).to_bytes(8, "big") + raw + blob[end:]


def test_format_is_json_header_plus_arrays(model):
    blob = model.to_bytes()
    assert blob.startswith(ml._MAGIC)
    _, header = _header(blob)
    assert header["format"] == 1
    assert header["meta"]["task_type"] == "classification"
    assert header["meta"]["algorithm"] == ml.ALGORITHM
    assert {a["name"] for a in header["arrays"]} == {"char_vocab", "char_idf", "word_idf", "coef", "intercept"}


@pytest.mark.parametrize("mangle", [
    lambda b: b"",
    lambda b: b"\x80\x04garbage",                 # e.g. a pickle: refused before anything runs
    lambda b: b[: len(ml._MAGIC) + 4],
    lambda b: b[: len(b) // 2],                    # truncated arrays
    lambda b: b[: len(ml._MAGIC)] + (10**9).to_bytes(8, "big") + b[len(ml._MAGIC) + 8 :],
    lambda b: b[: len(ml._MAGIC) + 8] + b"x" + b[len(ml._MAGIC) + 9 :],
])
def test_corrupt_bytes_raise_value_error(model, mangle):
    with pytest.raises(ValueError):
        ml.Model.from_bytes(mangle(model.to_bytes()))


def test_tampered_headers(model):
    blob = model.to_bytes()
    _, header = _header(blob)
    bad_dtype = orjson.loads(orjson.dumps(header))
    bad_dtype["arrays"][0]["dtype"] = "|O"
    bad_shape = orjson.loads(orjson.dumps(header))
    bad_shape["arrays"][0]["shape"] = [10**6]
    other = orjson.loads(orjson.dumps(header))
    other["meta"]["algorithm"] = "hlops-ml-0"
    for h in (bad_dtype, bad_shape):
        with pytest.raises(ValueError):
            ml.Model.from_bytes(_with_header(blob, h))
    with pytest.raises(ValueError, match="retrain"):
        ml.Model.from_bytes(_with_header(blob, other))


def test_no_direct_construction():
    with pytest.raises(TypeError):
        ml.Model()


def test_fingerprint(sentiment, model):
    texts, labels = sentiment
    fp = ml.fingerprint("classification", texts[:60], labels[:60])
    assert fp == model.version and len(fp) == 16
    assert ml.fingerprint("classification", texts[:60], labels[:60], seed=1) != fp
    assert ml.fingerprint("classification", texts[:60], labels[:60], labels=["x", *set(labels)]) != fp
    assert ml.fingerprint("classification", texts[1:61], labels[1:61]) != fp
    # Explicit taxonomy equal to the one inferred: the same model, the same version.
    assert ml.fingerprint("classification", texts[:60], labels[:60], labels=sorted(set(labels[:60]))) == fp
    # Fingerprinting works below MIN_EXAMPLES (nothing is trained).
    assert len(ml.fingerprint("classification", texts[:3], labels[:3])) == 16


def test_threads_share_a_model(sentiment, model):
    texts, _ = sentiment
    expected = model.predict(texts, n_best=2)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: model.predict(texts, n_best=2), range(8)))
    assert all(r == expected for r in results)


def test_missing_meta_is_value_error(model):
    blob = model.to_bytes()
    _, header = _header(blob)
    del header["meta"]["classes"]
    with pytest.raises(ValueError, match="corrupt model"):
        ml.Model.from_bytes(_with_header(blob, header))
