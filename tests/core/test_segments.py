"""Segment maps, playbooks and rules over raw metrics: TOML parsing and its checks, the built-in
maps (each assigns every customer, the default map as it always did), raw-metric rules against
pandas, the playbook columns, the lifecycle table and the long-silent warning."""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from helpers import RETAIL_OPTIONS, RETAIL_SLICE
from hypothesis import given, settings
from hypothesis import strategies as st

import rfm_fast
from rfm_fast import RFMError, SegmentRule
from rfm_fast.core.result import RESULT_COLUMNS
from rfm_fast.core.segments import (
    BUILTIN_MAPS,
    DEFAULT_RULES,
    LIFECYCLE_RULES,
    OTHER,
    assign_segments,
    load_rules,
    parse_rules,
    recent_segments_long_silent,
    resolve_rules,
    rules_toml,
)

ALL_CELLS = np.array(list(itertools.product(range(1, 6), repeat=3)))
SCORES = {k: ALL_CELLS[:, i].astype(np.int8) for i, k in enumerate("RFM")}

GUIDE_MAP = [  # docs/semantics.md and the guide: the default map, (R, F) -> segment
    ((5, 5), (4, 5), "Champions"),
    ((3, 4), (4, 5), "Loyal Customers"),
    ((4, 5), (2, 3), "Potential Loyalists"),
    ((5, 5), (1, 1), "New Customers"),
    ((4, 4), (1, 1), "Promising"),
    ((3, 3), (3, 3), "Need Attention"),
    ((3, 3), (1, 2), "About To Sleep"),
    ((1, 2), (3, 4), "At Risk"),
    ((1, 2), (5, 5), "Can't Lose Them"),
    ((1, 2), (1, 2), "Hibernating"),
]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_default_map_assigns_every_cell_as_the_guide_says():
    got = assign_segments(DEFAULT_RULES, SCORES).to_pylist()
    for (r, f, _), segment in zip(ALL_CELLS, got, strict=True):
        (expected,) = [n for rr, ff, n in GUIDE_MAP if rr[0] <= r <= rr[1] and ff[0] <= f <= ff[1]]
        assert segment == expected


@pytest.mark.parametrize("name", ["default", "value", "compact"])
def test_score_maps_cover_every_cell(name: str):
    rules = resolve_rules(name, 5)
    got = assign_segments(rules, SCORES).to_pylist()
    assert OTHER not in got
    assert all(rule.action and rule.priority for rule in rules)


@given(
    st.lists(st.integers(0, 5000), min_size=1, max_size=50),
    st.lists(st.integers(0, 5000), min_size=1, max_size=50),
)
@settings(max_examples=50, deadline=None)
def test_lifecycle_map_gives_every_customer_one_stage(recency: list[int], extra: list[int]):
    n = min(len(recency), len(extra))
    r = np.array(recency[:n])
    tenure = r + np.array(extra[:n])
    scores = {k: np.ones(n, dtype=np.int8) for k in "RFM"}
    got = assign_segments(LIFECYCLE_RULES, scores, {"recency": r, "tenure": tenure})
    expected = np.select(
        [tenure <= 30, r <= 89, r <= 180, r <= 365],
        ["New", "Active", "Lapsing", "Dormant"],
        "Lost",
    )
    assert got.to_pylist() == expected.tolist()


RULE = st.builds(
    lambda name, r, m, rec: SegmentRule(name, r, m, priority=rec),
    st.text("abc", min_size=1, max_size=3),
    st.dictionaries(
        st.sampled_from("RFM"),
        st.tuples(st.integers(1, 5), st.integers(1, 5)).map(lambda t: (min(t), max(t))),
        max_size=2,
    ),
    st.dictionaries(
        st.sampled_from(["recency", "tenure", "frequency", "monetary"]),
        st.tuples(st.integers(0, 40), st.integers(0, 40)).map(lambda t: (min(t), max(t))),
        min_size=1,
        max_size=2,
    ),
    st.none() | st.integers(1, 5),
)


@given(st.lists(RULE, min_size=1, max_size=6, unique_by=lambda r: r.name), st.integers(0, 2**31))
@settings(max_examples=60, deadline=None)
def test_first_matching_rule_wins(rules: list[SegmentRule], seed: int):
    rng = np.random.default_rng(seed)
    n = 60
    scores = {k: rng.integers(1, 6, n).astype(np.int8) for k in "RFM"}
    metrics = {k: rng.integers(0, 41, n) for k in ("recency", "tenure", "frequency")}
    metrics["monetary"] = rng.integers(0, 41, n).astype(float)
    got = assign_segments(resolve_rules(rules, 5), scores, metrics).to_pylist()
    for i in range(n):
        expected = OTHER
        for rule in rules:
            ok = all(lo <= scores[k][i] <= hi for k, (lo, hi) in rule.ranges.items())
            ok &= all(lo <= metrics[k][i] <= hi for k, (lo, hi) in rule.metrics.items())
            if ok:
                expected = rule.name
                break
        assert got[i] == expected


RAW_RULES = """
[[segment]]
name = "Big and recent"
recency_max = 60
monetary_min = 1000
action = "Thank them personally"
priority = 1

[[segment]]
name = "Top scores"
R = "4-5"
F = [4, 5]
monetary_max = 5000.5

[[segment]]
name = "Regulars"
frequency_min = 3
frequency_max = 10
tenure_min = 100
"""


def test_raw_metric_rules_match_pandas(tmp_path: Path):
    path = _write(tmp_path, RAW_RULES)
    result = rfm_fast.score(RETAIL_SLICE, **RETAIL_OPTIONS, segments=path)
    lines = pd.read_csv(RETAIL_SLICE, parse_dates=["InvoiceDate"]).dropna(subset=["CustomerID"])
    lines["amount"] = lines["Quantity"] * lines["UnitPrice"]
    as_of = lines["InvoiceDate"].max() + pd.Timedelta(days=1)
    purchases = lines[lines["amount"] >= 0]  # returns are netted, not purchases
    by = purchases.groupby("CustomerID")
    per = pd.DataFrame(
        {
            "recency": (as_of - by["InvoiceDate"].max()).dt.days,
            "tenure": (as_of - by["InvoiceDate"].min()).dt.days,
            "frequency": by["InvoiceNo"].nunique(),
        }
    )
    per["monetary"] = lines.groupby("CustomerID")["amount"].sum().reindex(per.index)
    table = result.table.to_pandas().set_index("CustomerID")
    per = per.reindex(table.index)
    assert (per["recency"] == table["recency"]).all()
    expected = np.select(
        [
            (per["recency"] <= 60) & (per["monetary"] >= 1000),
            table["R"].between(4, 5) & table["F"].between(4, 5) & (per["monetary"] <= 5000.5),
            per["frequency"].between(3, 10) & (per["tenure"] >= 100),
        ],
        ["Big and recent", "Top scores", "Regulars"],
        OTHER,
    )
    assert table["segment"].astype(str).tolist() == expected.tolist()
    assert set(expected) == {"Big and recent", "Regulars", "Top scores", OTHER}


def test_a_rules_file_reads_back_from_rules_toml(tmp_path: Path):
    rules = load_rules(_write(tmp_path, RAW_RULES), 5)
    assert rules[0].metrics == {"recency": (None, 60), "monetary": (1000, None)}
    assert rules[1].metrics == {"monetary": (None, 5000.5)}
    assert (rules[0].action, rules[0].priority, rules[1].action) == (
        "Thank them personally",
        1,
        None,
    )
    for name, written in [*BUILTIN_MAPS.items(), ("file", rules)]:
        assert load_rules(_write(tmp_path, rules_toml(written, f"map {name}")), 5) == written
    odd = (SegmentRule('\U0001f600 \u00e9 "q" \\ \x7f\x01', {"R": (1, 5)}, action="\U0001f680"),)
    assert load_rules(_write(tmp_path, rules_toml(odd)), 5) == odd  # beyond U+FFFF, controls


def test_descriptions_are_written_from_the_rules():
    rules = resolve_rules("value", 5)
    assert rules[0].describe() == "R 5, F 4-5, M 4-5: bought most recently, buy often, spend much"
    assert LIFECYCLE_RULES[2].describe() == "recency 90-180: last purchase 90 to 180 days ago"
    assert SegmentRule("x", {}, {"frequency": (2, None)}).describe() == (
        "frequency >= 2: purchases at least 2"
    )
    assert SegmentRule("x", {"R": (1, 1)}, description="Gone").describe() == "Gone"


def test_extends_sets_the_playbook_of_a_built_in_map(tmp_path: Path):
    path = _write(
        tmp_path,
        'extends = "default"\n[[segment]]\nname = "At Risk"\naction = "Call them"\npriority = 2\n',
    )
    rules = load_rules(path, 5)
    assert [r.name for r in rules] == [r.name for r in DEFAULT_RULES]
    at_risk = rules[7]
    assert (at_risk.action, at_risk.priority, at_risk.ranges) == (
        "Call them",
        2,
        DEFAULT_RULES[7].ranges,
    )
    assert rules[0] == DEFAULT_RULES[0]


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ('[[segment]]\nname = "x"\nr = 5\n', ["unknown key(s) r", "did you mean R?"]),
        ('[[segment]]\nname = "x"\nrecency = "0-30"\n', ["recency_max = 30"]),
        ('[[segment]]\nname = "x"\nrecncy_max = 30\n', ["did you mean recency_max?"]),
        ('[[segment]]\nname = "x"\nacton = "y"\nR = 5\n', ["did you mean action?"]),
        ('[[segment]]\nname = "x"\nrecency_min = 40\nrecency_max = 30\n', ["above recency_max"]),
        ('[[segment]]\nname = "x"\ntenure_max = -1\n', ["tenure_max = -1 is negative"]),
        ('[[segment]]\nname = "x"\nrecency_max = 3.5\n', ["a whole number of days"]),
        ('[[segment]]\nname = "x"\nmonetary_min = "100"\n', ["must be a number"]),
        ('[[segment]]\nname = "x"\nmonetary_min = inf\n', ["must be finite"]),
        ('[[segment]]\nname = "x"\nR = 5\npriority = 0\n', ["priority must be a whole number"]),
        ('[[segment]]\nname = "x"\nR = 5\npriority = 40000\n', ["from 1 (act first) to 9999"]),
        ('[[segment]]\nname = "x"\nR = "\u00b2"\n', ["is not a score or a range"]),
        ('[[segment]]\nname = "x"\nR = "\u0664-\u0665"\n', ["is not a score or a range"]),
        ('[[segment]]\nname = "x"\nR = 5\naction = ""\n', ["action must be non-empty text"]),
        ('[[segment]]\nname = "x"\naction = "y"\n', ["give at least one of R, F, M"]),
        ('extends = "defualt"\n', ["unknown segment map 'defualt' (did you mean default?)"]),
        ('extends = "default"\n[[segment]]\nname = "Champs"\naction = "y"\n', ["no segment"]),
        ('extends = "default"\n[[segment]]\nname = "At Risk"\nR = 1\n', ["copy the map"]),
        (
            'extends = "default"\n[[segment]]\nname = "At Risk"\naction = "a"\n'
            '[[segment]]\nname = "At Risk"\naction = "b"\n',
            ["'At Risk' is set twice (rule 1 too)"],
        ),
        ('extends = "lifecycle"\n[[segment]]\nname = "New"\npriority = 0\n', ["priority"]),
    ],
)
def test_bad_rules_files_say_what_and_how_to_fix(tmp_path: Path, text: str, fragments: list[str]):
    with pytest.raises(RFMError) as caught:
        load_rules(_write(tmp_path, text), 5)
    for fragment in fragments:
        assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_maps_by_name_and_their_bins():
    assert resolve_rules("lifecycle", 3) == LIFECYCLE_RULES
    with pytest.raises(RFMError, match="the compact segment map is defined for 5 bins"):
        resolve_rules("compact", 4)
    with pytest.raises(RFMError, match="tests raw metrics"):
        assign_segments(LIFECYCLE_RULES, SCORES)
    with pytest.raises(RFMError, match="used twice"):
        resolve_rules([SegmentRule("a", {"R": (1, 1)})] * 2, 5)
    with pytest.raises(RFMError, match="unknown metric 'recncy'"):
        resolve_rules([SegmentRule("a", {}, {"recncy": (1, 2)})], 5)
    assert parse_rules({"segment": [{"name": "a", "tenure_min": 0}]}, 2)[0].metrics == {
        "tenure": (0, None)
    }


def test_playbook_columns_are_optional_and_follow_the_segments():
    plain = rfm_fast.score(RETAIL_SLICE, **RETAIL_OPTIONS)
    assert plain.table.column_names[1:] == list(RESULT_COLUMNS)
    result = rfm_fast.score(RETAIL_SLICE, **RETAIL_OPTIONS, segments="value", playbook=True)
    names = result.table.column_names
    assert names[1:] == [*RESULT_COLUMNS, "action", "priority"]
    assert result.table.schema.field("priority").type == pa.int16()
    by_name = {rule.name: rule for rule in result.rules}
    rows = result.table.select(["segment", "action", "priority"]).to_pylist()
    for row in rows:
        rule = by_name[row["segment"]]
        assert (row["action"], row["priority"]) == (rule.action, rule.priority)
    assert result.with_playbook() is result
    none = rfm_fast.score(RETAIL_SLICE, **RETAIL_OPTIONS, segments=None, playbook=True)
    assert set(none.table.column("action").to_pylist()) == {None}
    with pytest.raises(RFMError, match="playbook must be True or False"):
        rfm_fast.score(RETAIL_SLICE, **RETAIL_OPTIONS, playbook="yes")


def test_summarize_and_playbook_carry_description_action_priority():
    result = rfm_fast.score(RETAIL_SLICE, **RETAIL_OPTIONS, segments="compact")
    summary = rfm_fast.summarize(result)
    assert summary.column_names[:5] == ["segment", "description", "action", "priority", "customers"]
    book = rfm_fast.playbook(result.rules)
    assert summary.column("action").to_pylist() == book.column("action").to_pylist()
    assert summary.column("description").to_pylist()[-1] == "matched by no rule"


def test_lifecycle_table_matches_pandas():
    result = rfm_fast.score(RETAIL_SLICE, **RETAIL_OPTIONS)
    table = rfm_fast.lifecycle_table(result)
    frame = result.table.to_pandas()
    stage = np.select(
        [frame["tenure"] <= 30, frame["recency"] <= 89, frame["recency"] <= 180,
         frame["recency"] <= 365],
        ["New", "Active", "Lapsing", "Dormant"],
        "Lost",
    )  # fmt: skip
    counts = pd.crosstab(frame["segment"].astype(str), stage)
    got = table.to_pandas().set_index("segment")
    assert list(got.index) == [name for name, _ in result.segment_counts()]
    for segment in got.index:
        for name in got.columns:
            expected = (
                counts.loc[segment, name] if segment in counts.index and name in counts else 0
            )
            assert got.loc[segment, name] == expected
    assert got.to_numpy().sum() == result.stats.customers
    custom = [SegmentRule("Recent", {}, {"recency": (None, 30)})]
    partial = rfm_fast.lifecycle_table(result, custom)
    assert partial.column_names == ["segment", "Recent", OTHER]
    with pytest.raises(RFMError, match="named 'segment'"):
        rfm_fast.lifecycle_table(result, [SegmentRule("segment", {"R": (1, 5)})])


def _warnings_of(**options) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rfm_fast.score(RETAIL_SLICE, **RETAIL_OPTIONS, **options)
    assert all(w.category is rfm_fast.RFMDataWarning for w in caught)
    return [str(w.message) for w in caught if "left out" not in str(w.message)]


def test_a_distant_as_of_warns_and_names_the_long_silent_recent_segments():
    found = _warnings_of(as_of="2030-01-01")
    assert len(found) == 2
    assert found[0].startswith("as_of 2030-01-01T00:00:00 is ")
    assert found[1].startswith("segments defined by recent purchases hold long-silent customers")
    assert "Champions 6," in found[1] and "Potential Loyalists" in found[1]
    assert "--segments lifecycle" in found[1]
    assert _warnings_of() == []
    assert _warnings_of(as_of="2030-01-01", segments="lifecycle")[1:] == []
    assert _warnings_of(as_of="2030-01-01", thresholds={"recency": [30, 90, 180, 365]}) == []


def test_only_recent_by_score_segments_can_be_long_silent():
    rules = (
        SegmentRule("Days", {"R": (5, 5)}, {"recency": (None, 9999)}),
        SegmentRule("Top", {"R": (4, 5)}),
        SegmentRule("Middle", {"R": (3, 5)}),
    )
    scores = {"R": np.array([5, 5, 4, 3]), "F": np.ones(4), "M": np.ones(4)}
    segment = assign_segments(rules, scores, {"recency": np.array([400, 900, 500, 999])})
    recency = np.array([400, 900, 500, 999])
    assert recent_segments_long_silent(rules, segment, recency, bins=5) == [("Top", 500.0)]
    assert recent_segments_long_silent(rules, segment, recency - 200, bins=5) == []


def test_builtin_maps_are_the_toml_files_and_lifecycle_matches_lost_days() -> None:
    """The built-in maps are data files read by the users' parser, and the lifecycle map's
    "Lost" stage starts where the recency warning's LOST_DAYS ends."""
    from importlib import resources

    from rfm_fast.core.segments import LOST_DAYS, load_rules

    for name, rules in BUILTIN_MAPS.items():
        with resources.as_file(
            resources.files("rfm_fast.data") / "segments" / f"{name}.toml"
        ) as path:
            assert load_rules(path, bins=5) == rules
    assert LIFECYCLE_RULES[-1].metrics == {"recency": (LOST_DAYS + 1, None)}
    assert LIFECYCLE_RULES[-2].metrics["recency"][1] == LOST_DAYS


@st.composite
def _score_rules(draw) -> tuple[int, list[SegmentRule]]:
    bins = draw(st.integers(2, 9))
    bounds = st.tuples(st.integers(1, bins), st.integers(1, bins)).map(sorted)
    rules = [
        SegmentRule(f"s{i}", draw(st.dictionaries(st.sampled_from("RFM"), bounds, max_size=3)))
        for i in range(draw(st.integers(0, 12)))
    ]
    return bins, rules


@given(_score_rules(), st.integers(0, 300), st.integers(0, 2**32 - 1))
def test_segments_looked_up_by_cell_are_the_first_matching_rule(bins_rules, n, seed):
    """Rules over scores only are applied to the (R, F, M) cells once: every customer still
    gets the first rule that matches its scores, else "Other"."""
    bins, rules = bins_rules
    rng = np.random.default_rng(seed)
    scores = {name: rng.integers(1, bins + 1, n).astype(np.int8) for name in "RFM"}
    expected = []
    for i in range(n):
        customer = {name: scores[name][i : i + 1] for name in "RFM"}
        matched = [rule.name for rule in rules if rule.matches(customer)[0]]
        expected.append(matched[0] if matched else "Other")
    assert assign_segments(rules, scores).to_pylist() == expected
