"""The option table (rfm_fast/core/option_table.py) against the library's entry points: each
takes exactly the reading and scoring options the table gives it, with the table's defaults,
and an entry point that lacks an option says why in the table. The commands are checked the
same way in tests/cli/test_option_parity.py."""

from __future__ import annotations

import inspect

import pytest

import rfm_fast
from rfm_fast import clv
from rfm_fast.core import binning
from rfm_fast.core.io import DEFAULT_BATCH_ROWS
from rfm_fast.core.option_table import (
    COMMANDS,
    ENTRY_POINTS,
    LIBRARY,
    OPTION,
    OPTIONS,
    REQUIRED,
    checked_group,
    taken_by,
)
from rfm_fast.core.options import ReadOptions, ScoreOptions, ScoringOptions
from rfm_fast.engines import dask as dask_engine
from rfm_fast.engines import distributed
from rfm_fast.engines import spark as spark_engine
from rfm_fast.errors import RFMError

FUNCTIONS = {
    "score": rfm_fast.score,
    "DailyState.init": rfm_fast.DailyState.init,
    "clv.analyze": clv.analyze,
    "spark": spark_engine.score_result,
    "dask": dask_engine.score_result,
}
"""The library's entry points of the table (rfm_fast.migrate and rfm_fast.campaign pass their
keywords to rfm_fast.score as they are)."""

OWN_DEFAULTS = {("dask", "batch_rows"): distributed.PARTITION_BATCH_ROWS}
"""Defaults an entry point sets on purpose: a Dask partition is folded in smaller batches."""


def drift(entry: str, parameters: inspect.Signature) -> dict[str, list[str]]:
    """The options of the table that ``parameters`` lack though the table gives them to
    ``entry``, and those it has though the table does not."""
    names = set(parameters.parameters) & set(OPTION)
    expected = set(taken_by(entry))
    return {"missing": sorted(expected - names), "extra": sorted(names - expected)}


def test_every_library_entry_point_of_the_table_is_checked():
    assert set(FUNCTIONS) == set(LIBRARY)


@pytest.mark.parametrize("entry", sorted(FUNCTIONS))
def test_each_entry_point_takes_what_the_table_gives_it(entry: str):
    assert drift(entry, inspect.signature(FUNCTIONS[entry])) == {"missing": [], "extra": []}


@pytest.mark.parametrize("entry", sorted(FUNCTIONS))
def test_each_entry_point_has_the_table_defaults(entry: str):
    parameters = inspect.signature(FUNCTIONS[entry]).parameters
    for name in taken_by(entry):
        default = OWN_DEFAULTS.get((entry, name), OPTION[name].default)
        expected = inspect.Parameter.empty if default is REQUIRED else default
        assert parameters[name].default == expected, (entry, name)


def test_drift_is_seen_both_ways():
    """The check above fails for an option left out (delimiter, as the Spark and Dask entry
    points once left it out of a file read) and for one the table does not give."""

    def lacks_delimiter(data, *, customer, timestamp, amount, order=None, as_of=None, bins=5,
                        method="exact", frequency="orders", monetary="sum", returns="net",
                        segments="default", timestamp_format=None, schema=None,
                        amount_format=None, decimal=".", window=None, thresholds=None,
                        threads=None, batch_rows=DEFAULT_BATCH_ROWS):  # fmt: skip
        pass

    assert drift("score", inspect.signature(lacks_delimiter)) == {
        "missing": ["delimiter"],
        "extra": [],
    }
    assert drift("spark", inspect.signature(lacks_delimiter))["extra"] == [
        "batch_rows",
        "schema",
        "threads",
        "window",
    ]


def test_every_reason_names_an_entry_point_that_would_take_the_option():
    for option in OPTIONS:
        for entry, reason in option.not_taken_by.items():
            point = ENTRY_POINTS[entry]
            assert option.group in point.groups or option.name in point.also, (option.name, entry)
            assert reason.strip(), (option.name, entry)


def test_file_options_are_left_out_only_where_no_file_is_read():
    """delimiter and schema (CSV files) are taken everywhere a file can be read; Spark and Dask
    read DataFrames."""
    for name in ("delimiter", "schema"):
        assert set(ENTRY_POINTS) - set(e for e in ENTRY_POINTS if name in taken_by(e)) == {
            "spark",
            "dask",
            "rfm state update",
        }


def test_every_reading_command_takes_every_reading_and_scoring_option_or_says_why():
    for entry in COMMANDS:
        if entry == "rfm state update":  # the state's options, fixed by rfm state init
            continue
        left_out = {o.name for o in OPTIONS if not o.takes(entry)}
        assert left_out <= {"as_of", "window", "batch_rows"}, entry


def test_the_choices_are_the_library_s():
    assert OPTION["method"].choices == binning.METHODS
    assert OPTION["batch_rows"].default == DEFAULT_BATCH_ROWS


def test_the_option_objects_come_from_the_table():
    reading = ReadOptions.checked(customer="c", timestamp="t", amount="a", delimiter="whitespace")
    assert (reading.frequency, reading.returns, reading.decimal) == ("orders", "net", ".")
    assert reading.delimiter == "whitespace" and reading.batch_rows == DEFAULT_BATCH_ROWS
    scoring = ScoreOptions.checked()
    assert (scoring.bins, scoring.method, scoring.monetary) == (5, "exact", "sum")
    with pytest.raises(RFMError, match="returns must be one of net, purchase, drop; got 'x'"):
        ReadOptions.checked(customer="c", timestamp="t", amount="a", returns="x")
    with pytest.raises(RFMError, match="method must be one of exact, split, approx"):
        ScoreOptions.checked(method="ntile")
    with pytest.raises(RFMError, match="unknown option"):
        ReadOptions.checked(customer="c", timestamp="t", amount="a", bins=3)
    with pytest.raises(RFMError, match="missing option: amount"):
        checked_group("read", {"customer": "c", "timestamp": "t"})
    with pytest.raises(RFMError, match="unknown option"):
        ScoringOptions.checked(customer="c", timestamp="t", amount="a", colour="red")
