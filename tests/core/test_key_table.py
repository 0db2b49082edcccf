"""KeyTable, the map of text and integer order ids to dense ids: first-seen order, one id per
distinct key, across batches, growth and the shortcut for a row that repeats the key before."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rfm_fast.core import aggregator as aggregation
from rfm_fast.core.arrow import key_column

KEYS = st.lists(st.one_of(st.none(), st.sampled_from(["", "a", "ab", "b", "ba", "é", "a" * 40])))


@given(st.lists(KEYS, min_size=1, max_size=4), st.sampled_from([pa.string(), pa.large_string()]))
def test_text_keys_get_dense_ids_in_first_seen_order(batches: list[list], type_: pa.DataType):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(aggregation, "INITIAL_SLOTS", 2)  # growth, and resumes, within a batch
        table = aggregation.KeyTable("string")
        table.arena = np.zeros(1, dtype=np.uint8)  # the arena grows too
        got = []
        for keys in batches:
            out = np.empty(len(keys), dtype=np.int64)
            table.factorize(key_column(pa.array(keys, type_)), out)
            got += out.tolist()
    seen: dict[str, int] = {}
    expected = [-1 if k is None else seen.setdefault(k, len(seen)) for b in batches for k in b]
    assert got == expected
    assert table.keys().to_pylist() == list(seen)


def test_a_repeated_key_after_a_null_or_a_longer_key_is_looked_up():
    table = aggregation.KeyTable("string")
    keys = pa.array(["ab", "ab", None, "ab", "abab", "ab", "b", "b"])
    out = np.empty(len(keys), dtype=np.int64)
    table.factorize(key_column(keys.slice(0)), out)
    assert out.tolist() == [0, 0, -1, 0, 1, 0, 2, 2]
    sliced = keys.slice(3)  # offsets that do not start at zero
    out = np.empty(len(sliced), dtype=np.int64)
    table.factorize(key_column(sliced), out)
    assert out.tolist() == [0, 1, 0, 2, 2]
