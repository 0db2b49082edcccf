"""A first hour with no dead ends (issue 27, item 6): a missing optional package says which
extra installs it; a CSV file's delimiter is guessed when not given; a timestamp format that
does not read the values names the column, the value and the formats that would."""

from __future__ import annotations

import datetime as dt
import importlib
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rfm_fast
from rfm_fast.core.arrow import TIMESTAMP_FORMATS, formats_that_read
from rfm_fast.core.io import SNIFFED_DELIMITERS, sniff_delimiter

EXAMPLE = {"customer": "customer_id", "timestamp": "date", "amount": "dollar_value"}
COLUMNS = {"customer": "customer", "timestamp": "ts", "amount": "amount"}
ROOT = Path(__file__).resolve().parents[2]


def _hide(monkeypatch: pytest.MonkeyPatch, package: str) -> None:
    """Make ``import package`` (and of its submodules) raise ImportError, as it does where the
    package is not installed."""
    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, package, None)


def _pip(extra: str) -> str:
    return f"install it with: pip install 'rfm_fast[{extra}]'"


# --------------------------------------------------------------------------- optional packages


@pytest.fixture(scope="module")
def example_result() -> rfm_fast.RFMResult:
    return rfm_fast.score(rfm_fast.datasets.example_path(), **EXAMPLE)


def test_clv_without_scipy_says_which_extra_installs_it(monkeypatch):
    import rfm_fast.clv

    summary = rfm_fast.clv.summary(rfm_fast.datasets.example_path(), **EXAMPLE)
    _hide(monkeypatch, "scipy")
    with pytest.raises(rfm_fast.RFMError, match=r"needs scipy: " + _pip("clv").replace("[", r"\[")):
        rfm_fast.clv.analyze(rfm_fast.datasets.example_path(), **EXAMPLE)
    for model in (rfm_fast.clv.BetaGeo(), rfm_fast.clv.ParetoNBD()):
        with pytest.raises(rfm_fast.RFMError) as error:
            model.fit(summary)
        assert str(error.value).endswith(_pip("clv"))


def test_a_fitted_model_predicts_without_scipy_only_with_the_pip_line(monkeypatch):
    import rfm_fast.clv

    summary = rfm_fast.clv.summary(rfm_fast.datasets.example_path(), **EXAMPLE)
    model = rfm_fast.clv.BetaGeo().fit(summary)
    _hide(monkeypatch, "scipy")
    with pytest.raises(rfm_fast.RFMError) as error:
        model.predict(summary, t=4)
    assert str(error.value).endswith(_pip("clv"))


def test_the_report_without_matplotlib_says_which_extra_installs_it(monkeypatch, example_result):
    from rfm_fast.insight.report import build_report

    _hide(monkeypatch, "matplotlib")
    with pytest.raises(rfm_fast.RFMError) as error:
        build_report(example_result)
    assert str(error.value) == "the HTML report (its charts) needs matplotlib: " + _pip("report")


def test_to_pandas_and_to_polars_without_them_say_which_extra_installs_them(
    monkeypatch, example_result
):
    _hide(monkeypatch, "pandas")
    _hide(monkeypatch, "polars")
    with pytest.raises(rfm_fast.RFMError) as error:
        example_result.to_pandas()
    assert str(error.value) == "RFMResult.to_pandas() needs pandas: " + _pip("reference")
    with pytest.raises(rfm_fast.RFMError) as error:
        example_result.to_polars()
    assert str(error.value) == "RFMResult.to_polars() needs polars: " + _pip("polars")


def test_the_reference_without_pandas_says_which_extra_installs_it(monkeypatch):
    _hide(monkeypatch, "pandas")
    monkeypatch.delitem(sys.modules, "rfm_fast.reference", raising=False)
    with pytest.raises(rfm_fast.RFMError) as error:
        importlib.import_module("rfm_fast.reference")
    assert str(error.value).endswith("needs pandas: " + _pip("reference"))


def test_a_database_without_its_driver_says_which_extra_installs_it(monkeypatch, tmp_path):
    _hide(monkeypatch, "adbc_driver_sqlite")
    data = rfm_fast.Database(f"sqlite:{tmp_path / 'orders.db'}", table="orders")
    with pytest.raises(rfm_fast.RFMError) as error:
        rfm_fast.score(data, **EXAMPLE)
    assert str(error.value).endswith("needs adbc-driver-sqlite: " + _pip("sqlite"))


@pytest.mark.parametrize("engine, package", [("spark", "pyspark"), ("dask", "dask")])
def test_the_engines_without_their_package_say_which_extra_installs_it(
    monkeypatch, engine, package
):
    module = importlib.import_module(f"rfm_fast.engines.{engine}")
    _hide(monkeypatch, package)
    with pytest.raises(rfm_fast.RFMError) as error:
        module.score_result(None, **EXAMPLE)
    assert str(error.value) == f"rfm_fast.engines.{engine} needs {package}: " + _pip(engine)


def _cli_without(package: str, args: list[str]) -> subprocess.CompletedProcess:
    code = (
        f"import sys; sys.modules[{package!r}] = None; from rfm_fast_cli import main; "
        f"sys.argv = ['rfm', *{args!r}]; main()"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )


@pytest.mark.parametrize(
    "command, package, extra",
    [("clv", "scipy", "clv"), ("report", "matplotlib", "report")],
)
def test_the_cli_without_an_optional_package_prints_the_pip_line(tmp_path, command, package, extra):
    output = tmp_path / ("out.html" if command == "report" else "out.csv")
    args = [command, str(rfm_fast.datasets.example_path()), "-o", str(output)]
    for option, column in EXAMPLE.items():
        args += [f"--{option}", column]
    done = _cli_without(package, args)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: ")
    assert done.stderr.rstrip().endswith(f"needs {package}: " + _pip(extra))
    assert not output.exists()


# --------------------------------------------------------------------------- CSV delimiters

DELIMITERS = (*SNIFFED_DELIMITERS, "whitespace")
_NEEDS_QUOTES = frozenset(',;\t|"\n')


def _cell(value: str, delimiter: str) -> str:
    if delimiter != "whitespace" and _NEEDS_QUOTES & set(value):
        return '"' + value.replace('"', '""') + '"'
    return value


def _write_table(path: Path, rows: list[list[str]], delimiter: str) -> Path:
    separator = "   " if delimiter == "whitespace" else delimiter
    path.write_text(
        "".join(separator.join(_cell(v, delimiter) for v in row) + "\n" for row in rows),
        encoding="utf-8",
    )
    return path


_words = st.text(st.sampled_from("abcXYZ019_-.:é"), min_size=1, max_size=8)
_texts = st.text(st.sampled_from('ab 1,;|\t"é.'), min_size=0, max_size=10)


@given(
    delimiter=st.sampled_from(DELIMITERS),
    columns=st.integers(2, 5),
    data=st.data(),
)
def test_the_delimiter_a_file_was_written_with_is_guessed(delimiter, columns, data):
    plain = delimiter == "whitespace"
    header_cell = _words if plain else st.builds(" ".join, st.lists(_words, min_size=1, max_size=3))
    header = data.draw(st.lists(header_cell, min_size=columns, max_size=columns))
    cell = _words if plain else _texts
    rows = data.draw(
        st.lists(st.lists(cell, min_size=columns, max_size=columns), min_size=1, max_size=20)
    )
    separator = "  " if plain else delimiter
    text = "".join(
        separator.join(_cell(v, delimiter) for v in row) + "\n" for row in [header, *rows]
    )
    assert sniff_delimiter(text) == delimiter


@given(
    delimiter=st.sampled_from(DELIMITERS),
    name=st.sampled_from(["Customer ID", "customer"]),
    orders=st.lists(
        st.tuples(st.integers(1, 30), st.dates(dt.date(2020, 1, 1), dt.date(2024, 12, 31)),
                  st.integers(1, 50_000)),
        min_size=1, max_size=40,
    ),
)  # fmt: skip
def test_a_file_read_without_its_delimiter_scores_as_with_it(
    tmp_path_factory, delimiter, name, orders
):
    if delimiter == "whitespace":
        name = name.replace(" ", "_")
    rows = [[name, "ts", "amount"]] + [
        [str(c), d.isoformat(), f"{a / 100:.2f}"] for c, d, a in orders
    ]
    path = _write_table(tmp_path_factory.mktemp("sniff") / "orders.csv", rows, delimiter)
    columns = {**COLUMNS, "customer": name}
    guessed = rfm_fast.score(path, **columns)
    given_ = rfm_fast.score(path, **columns, delimiter=delimiter)
    assert guessed.table.equals(given_.table)
    assert guessed.stats.delimiters_guessed == {str(path): delimiter}
    assert given_.stats.delimiters_guessed == {}


def test_a_semicolon_file_with_decimal_commas_and_quoted_semicolons_is_read_as_one(tmp_path):
    path = tmp_path / "orders.csv.gz"
    import gzip

    path.write_bytes(
        gzip.compress(b'customer;ts;amount;note\n1;2024-01-02;3,50;"a; b"\n2;2024-01-05;4,00;x\n')
    )
    result = rfm_fast.score(path, **COLUMNS, decimal=",")
    assert result.stats.delimiters_guessed == {str(path): ";"}
    assert result.table.column("monetary").to_pylist() == [3.5, 4.0]


def test_a_one_column_read_that_another_delimiter_would_split_is_refused(tmp_path):
    path = _write_table(
        tmp_path / "orders.csv", [["customer", "ts", "amount"], ["1", "2024-01-02", "3"]], ";"
    )
    with pytest.raises(rfm_fast.RFMError) as error:
        rfm_fast.score(path, **COLUMNS, delimiter=",")
    message = str(error.value)
    assert "has one column, 'customer;ts;amount'" in message
    assert "give delimiter=';'" in message


def test_a_comma_file_read_as_whitespace_separated_is_refused(tmp_path):
    path = _write_table(
        tmp_path / "orders.txt", [["customer", "ts", "amount"], ["1", "2024-01-02", "3"]], ","
    )
    with pytest.raises(rfm_fast.RFMError, match=r"has one column.*give delimiter=','"):
        rfm_fast.score(path, **COLUMNS, delimiter="whitespace")


def test_a_file_of_one_column_is_read_as_one_column():
    assert sniff_delimiter("customer\n1\n2\n") == ","
    assert sniff_delimiter("") == ","


# --------------------------------------------------------------------------- timestamp formats

_FORMATS = (*TIMESTAMP_FORMATS, "%Y-%m-%d %H:%M:%S")


@given(
    format_=st.sampled_from(_FORMATS),
    times=st.lists(
        st.datetimes(dt.datetime(1990, 1, 1), dt.datetime(2030, 12, 31)), min_size=1, max_size=20
    ),
)
def test_the_format_values_were_written_with_is_among_those_that_read_them(format_, times):
    values = pa.array([t.strftime(format_) for t in times])
    assert format_ in formats_that_read(values)


@given(
    format_=st.sampled_from(["%d/%m/%Y %H:%M", "%d.%m.%Y", "%Y%m%d"]),
    times=st.lists(
        st.datetimes(dt.datetime(2000, 1, 13), dt.datetime(2030, 12, 31)), min_size=1, max_size=8
    ),
)
def test_a_format_that_does_not_read_the_csv_names_the_column_value_and_formats(
    tmp_path_factory, format_, times
):
    wrong = "%Y-%m-%d"
    times = [t.replace(day=13) for t in times]  # day 13: no month-first reading
    rows = [["customer", "Invoice Date", "amount"]] + [
        [str(i), t.strftime(format_), "1"] for i, t in enumerate(times)
    ]
    path = _write_table(tmp_path_factory.mktemp("ts") / "orders.csv", rows, ",")
    with pytest.raises(rfm_fast.RFMError) as error:
        rfm_fast.score(path, **{**COLUMNS, "timestamp": "Invoice Date"}, timestamp_format=wrong)
    message = str(error.value)
    assert "timestamp column 'Invoice Date'" in message
    assert repr(times[0].strftime(format_)) in message
    assert repr(format_) in message
    assert "CSV conversion error" not in message  # no text of Arrow's


def test_a_format_given_for_iso_values_says_to_leave_it_out(tmp_path):
    path = _write_table(
        tmp_path / "orders.csv",
        [["customer", "ts", "amount"], ["1", "2011-12-01 08:26:00", "2"]],
        ",",
    )
    with pytest.raises(rfm_fast.RFMError, match=r"ISO-8601.*leave timestamp_format out"):
        rfm_fast.score(path, **COLUMNS, timestamp_format="%d/%m/%Y %H:%M")


def test_a_long_bad_timestamp_is_shown_as_an_excerpt():
    table = pa.table({"customer": [1], "ts": ["x" * 500], "amount": [1.0]})
    with pytest.raises(rfm_fast.RFMError) as error:
        rfm_fast.score(table, **COLUMNS)
    assert "(500 characters)" in str(error.value) and "x" * 100 not in str(error.value)
