"""Fuzzing the command line and the API with hostile text, extreme values and malformed files.

Whatever goes in, a run ends in one of two ways: exit code 0 with its output, or exit code 1
with exactly one line on stderr that starts with ``error:`` and no traceback. No temporary or
partial file is ever left, and the input is never changed. The API raises RFMError (a
ValueError) and nothing else. Each test is bounded by its number of examples (see
tests/conftest.py for the profiles); they run in CI.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import string
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rfm_fast_cli.main import app
from typer.testing import CliRunner

import rfm_fast

FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

HOSTILE = st.one_of(
    st.sampled_from(
        [
            "[/x]",
            "[[segment]]",
            "[bold red]x[/]",
            ":smile:",
            "%s%n",
            "{0}{customer}",
            "\x1b[31mred\x1b[0m",
            "\x1b]0;title\x07",
            "a\rb",
            "tab\there",
            "new\nline",
            "\u202eevil",
            "\x00nul",
            "'; DROP TABLE x; --",
            "$(touch pwned)",
            "`touch pwned`",
            "../../etc/passwd",
            "é" * 300,
            "",
            " ",
        ]
    ),
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=0, max_size=40
    ),
)
"""Text that a careless program would interpret: markup, format strings, escapes, shell."""


def _orders(path: Path) -> Path:
    pq.write_table(
        pa.table(
            {
                "customer": [1, 1, 2, 3],
                "timestamp": pa.array(
                    [dt.datetime(2024, 1, d) for d in (1, 9, 4, 20)], pa.timestamp("s")
                ),
                "amount": [10.0, -2.0, 5.0, 7.5],
            }
        ),
        path,
    )
    return path


def _rules_naming(folder: Path, name: str) -> Path:
    """A rules file of one rule, for every customer, named ``name`` (escaped as TOML text)."""
    rules = folder / "rules.toml"
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    quoted = "".join(c if ord(c) >= 32 and c != "\x7f" else f"\\u{ord(c):04x}" for c in quoted)
    rules.write_text(f'[[segment]]\nname = "{quoted}"\nR = "1-5"\n', encoding="utf-8")
    return rules


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_outcome(result, folder: Path, allowed: set[str]) -> None:
    """Exit 0, or exit 1 with one plain error line; no traceback; only ``allowed`` files."""
    assert result.exit_code in (0, 1), (result.exit_code, result.output, result.stderr)
    assert "Traceback" not in result.output + result.stderr
    if result.exit_code == 1:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if not line.startswith("warning: ")]
        assert len(errors) == 1 and errors[0].startswith("error: "), result.stderr
        assert "\x1b" not in result.stderr  # control characters are printed escaped
    left = {p.name for p in folder.iterdir()}
    assert left <= allowed, left - allowed
    assert not any(name.endswith(".tmp") for name in left), left


@FUZZ
@given(
    option=st.sampled_from(["--customer", "--timestamp", "--amount", "--order", "--as-of"]),
    text=HOSTILE,
)
def test_hostile_option_values(tmp_path_factory, option: str, text: str) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    orders = _orders(folder / "orders.parquet")
    before = _digest(orders)
    result = CliRunner().invoke(
        app, ["score", str(orders), option, text, "-o", str(folder / "out.csv")]
    )
    _check_outcome(result, folder, {"orders.parquet", "out.csv"})
    assert _digest(orders) == before
    if result.exit_code == 1 and text.strip() and "\x1b" not in text and "\r" not in text:
        assert all(ord(c) >= 32 for c in result.stderr.strip())  # one line, nothing hidden


@FUZZ
@given(name=HOSTILE)
def test_hostile_segment_names_print_as_written(tmp_path_factory, name: str) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    orders = _orders(folder / "orders.parquet")
    rules = _rules_naming(folder, name)
    result = CliRunner().invoke(
        app, ["score", str(orders), "--segments", str(rules), "-o", str(folder / "out.parquet")]
    )
    _check_outcome(result, folder, {"orders.parquet", "rules.toml", "out.parquet"})
    if result.exit_code == 0 and name.strip() and name.isprintable():
        if len(name) <= 20:  # (a longer one wraps inside its table cell)
            assert name in result.output
        table = pq.read_table(folder / "out.parquet")
        assert set(table.column("segment").to_pylist()) == {name}


@FUZZ
@given(option=st.sampled_from(["--where", "--segment", "--sort-by"]), text=HOSTILE)
def test_hostile_export_conditions_and_segments(tmp_path_factory, option: str, text: str) -> None:
    """A condition is parsed, never evaluated; a segment name only ever matches a name."""
    folder = tmp_path_factory.mktemp("fuzz")
    orders = _orders(folder / "orders.parquet")
    result = CliRunner().invoke(
        app, ["export", str(orders), option, text, "-o", str(folder / "out.csv")]
    )
    _check_outcome(result, folder, {"orders.parquet", "out.csv"})
    assert not (folder / "pwned").exists()


@FUZZ
@given(name=HOSTILE)
def test_hostile_segment_names_make_safe_list_files(tmp_path_factory, name: str) -> None:
    """One file per segment: named from the segment, always inside the folder given."""
    folder = tmp_path_factory.mktemp("fuzz")
    orders = _orders(folder / "orders.parquet")
    rules = _rules_naming(folder, name)
    lists = folder / "lists"
    result = CliRunner().invoke(
        app, ["export", str(orders), "--segments", str(rules), "-o", str(lists), "--per-segment"]
    )
    _check_outcome(result, folder, {"orders.parquet", "rules.toml", "lists"})
    if result.exit_code == 0:
        files = sorted(p.name for p in lists.iterdir())
        assert len(files) == 2  # the segment's, and Other's
        assert all(set(f.removesuffix(".csv")) <= set(string.ascii_lowercase + string.digits + "_")
                   for f in files)  # fmt: skip


@FUZZ
@given(
    name=st.text(
        alphabet=string.ascii_letters + string.digits + " []{}%$'-_.", min_size=1, max_size=30
    )
)
def test_hostile_output_names(tmp_path_factory, name: str) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    orders = _orders(folder / "orders.parquet")
    output = folder / f"{name}.csv"
    result = CliRunner().invoke(app, ["score", str(orders), "-o", str(output)])
    _check_outcome(result, folder, {"orders.parquet", output.name})
    assert result.exit_code == 0 and output.exists()


@FUZZ
@given(content=st.binary(min_size=0, max_size=400))
def test_malformed_csv_files(tmp_path_factory, content: bytes) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / "orders.csv"
    path.write_bytes(b"customer,timestamp,amount\n" + content)
    result = CliRunner().invoke(app, ["score", str(path), "-o", str(folder / "out.parquet")])
    _check_outcome(result, folder, {"orders.csv", "out.parquet"})
    assert path.read_bytes() == b"customer,timestamp,amount\n" + content


EXTREME_AMOUNTS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([2.0**62, -(2.0**62), 4e18, 1e308, 5e-324, -0.0]),
)
EXTREME_TICKS = st.one_of(
    st.integers(-(2**63) + 1, 2**63 - 1),
    st.sampled_from([0, -(2**63) + 1, 2**63 - 1, 253402214400 * 10**6]),
)


@FUZZ
@given(
    amounts=st.lists(EXTREME_AMOUNTS, min_size=1, max_size=6),
    ticks=st.lists(EXTREME_TICKS, min_size=1, max_size=6),
    unit=st.sampled_from(["s", "ms", "us", "ns"]),
    keys=st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=6),
    as_of=st.one_of(st.none(), st.sampled_from(["0001-01-01", "9999-12-31", "2024-01-01"])),
)
def test_extreme_values_through_the_api(amounts, ticks, unit, keys, as_of) -> None:
    """Values at and past every limit: a result, or an RFMError; never another exception, a
    wrapped sum, or a negative recency."""
    n = min(len(amounts), len(ticks), len(keys))
    table = pa.table(
        {
            "c": pa.array(keys[:n], pa.int64()),
            "t": pa.array(ticks[:n], pa.int64()).view(pa.timestamp(unit)),
            "a": pa.array(amounts[:n], pa.float64()),
        }
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rfm_fast.RFMWarning)  # an empty result warns
            result = rfm_fast.score(table, customer="c", timestamp="t", amount="a", as_of=as_of)
    except rfm_fast.RFMError as error:
        assert "\n" not in str(error)
        return
    money = result.table.column("monetary").to_numpy()
    finite = np.array([a for a in amounts[:n] if np.isfinite(a)])
    assert np.isfinite(money).all()
    assert np.abs(money).sum() <= np.abs(finite).sum() * (1 + 1e-12) + 1e-300
    assert (result.table.column("recency").to_numpy() >= 0).all()
