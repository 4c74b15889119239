"""canonical.RowNormaliser (the checked pass's per-row normaliser) is normalise_row."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlops import canonical

FIELDS = {"t": "text", "c": "categorical", "o": "character_offsets"}
values = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=5),
    st.lists(st.fixed_dictionaries({"start": st.integers(-1, 6), "end": st.integers(-1, 8),
                                    "label": st.text(max_size=2)}), max_size=3),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(["t", "c", "o", "x"]), values, max_size=4))
def test_row_normaliser_equals_normalise_row(row):
    normalise = canonical.RowNormaliser(FIELDS)
    try:
        want = canonical.normalise_row(row, FIELDS)
    except canonical.InvalidValue as exc:  # the same first problem, located the same way
        with pytest.raises(canonical.InvalidValue) as got:
            normalise(row)
        assert (got.value.msg, got.value.type, got.value.loc) == (exc.msg, exc.type, exc.loc)
        return
    got = normalise(row)
    assert got == want and list(got) == list(want)  # same key order too
