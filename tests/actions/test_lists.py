"""Customer lists: segments and conditions select the customers a pandas filter selects, most
valuable first; conditions are parsed, never evaluated; one file per segment, or one file."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from helpers import RETAIL_SLICE
from hypothesis import given, settings
from hypothesis import strategies as st
from rfm_fast_cli.main import app
from typer.testing import CliRunner

import rfm_fast
from rfm_fast import RFMError
from rfm_fast.actions.lists import LIST_COLUMNS, customer_list, parse_condition, write_lists

RETAIL = dict(
    customer="CustomerID", timestamp="InvoiceDate", amount="Quantity*UnitPrice", order="InvoiceNo"
)
RETAIL_ARGS = ["--customer", "CustomerID", "--timestamp", "InvoiceDate"]
RETAIL_ARGS += ["--amount", "Quantity*UnitPrice", "--order", "InvoiceNo"]
RESULT = rfm_fast.score(RETAIL_SLICE, **RETAIL)
COMPARE = {">=": "__ge__", "<=": "__le__", ">": "__gt__", "<": "__lt__", "=": "__eq__"}
COMPARE["!="] = "__ne__"


@settings(max_examples=30, deadline=None)
@given(
    segments=st.none() | st.lists(st.sampled_from([n for n, _ in RESULT.segment_counts()])),
    comparisons=st.lists(
        st.tuples(
            st.sampled_from(["recency", "frequency", "monetary", "tenure", "R", "F", "M"]),
            st.sampled_from(list(COMPARE)),
            st.sampled_from([0, 1, 3, 5, 30, 250.5, 1000]),
        ),
        max_size=3,
    ),
)
def test_a_list_holds_what_a_pandas_filter_holds(segments, comparisons):
    where = " and ".join(f"{name} {op} {value}" for name, op, value in comparisons) or None
    got = customer_list(RESULT, segments=segments, where=where)
    frame = RESULT.to_pandas()
    keep = pd.Series(True, index=frame.index)
    if segments is not None:
        keep &= frame["segment"].astype(str).isin(segments)
    for name, op, value in comparisons:
        keep &= getattr(frame[name].astype(float), COMPARE[op])(value)
    expected = frame[keep].sort_values(["monetary", "CustomerID"], ascending=[False, True])
    assert got.column("CustomerID").to_pylist() == expected["CustomerID"].tolist()
    assert got.column_names == ["CustomerID", *LIST_COLUMNS]


def test_the_playbook_and_the_predictions_travel_with_the_list():
    result = rfm_fast.score(RETAIL_SLICE, **RETAIL, segments="compact")
    vip = customer_list(result, segments=["VIP"])
    assert set(vip.column("segment").to_pylist()) == {"VIP"}
    assert vip.column("priority").to_pylist() == [1] * vip.num_rows
    assert vip.column("action").null_count == 0
    with_values = result.table.append_column("clv", pa.array(range(result.table.num_rows), "f8"))
    ranked = customer_list(
        rfm_fast.RFMResult(with_values, result.edges, result.stats, result.rules)
    )
    assert ranked.column_names[-1] == "clv"
    clv = ranked.column("clv").to_pylist()
    assert clv == sorted(clv, reverse=True)  # by CLV when the result has it
    assert customer_list(result, sort_by="recency").column("recency").to_pylist() == sorted(
        result.table.column("recency").to_pylist(), reverse=True
    )


@pytest.mark.parametrize(
    ("where", "fragment"),
    [
        ("monetary >= ", "is not a comparison"),
        ("__import__('os').system('echo hi') > 0", "is not a comparison"),
        ("monetary >= 1000 or R = 5", "is not a comparison"),
        ("moneytary >= 10", "unknown name 'moneytary' (did you mean 'monetary'?)"),
        ("{monetary} > 1", "is not a comparison"),
        ("", "a condition compares a metric with a number"),
        ("clv > 100", "fit the models first"),
        ("monetary >= 1e400", "is out of range"),
        ("monetary >= -1e-400", "is out of range"),
        ("R = \u0665", "is not a comparison"),
    ],
)
def test_a_condition_is_parsed_never_evaluated(where, fragment):
    with pytest.raises(RFMError, match=None) as caught:
        customer_list(RESULT, where=where)
    assert fragment in str(caught.value)


def test_parse_condition_reads_every_operator():
    parsed = parse_condition("R=5 AND F != 1 and monetary > 2.5e2 and recency<=.5")
    assert [(c.name, c.op, c.value) for c in parsed] == [
        ("R", "=", 5.0),
        ("F", "!=", 1.0),
        ("monetary", ">", 250.0),
        ("recency", "<=", 0.5),
    ]


def test_an_unknown_segment_names_the_closest(tmp_path):
    with pytest.raises(RFMError, match="no segment 'Champs' \\(did you mean 'Champions'\\?\\)"):
        customer_list(RESULT, segments=["Champs"])


def test_one_file_per_segment_named_safely(tmp_path):
    rules = [
        rfm_fast.SegmentRule("Can't Lose Them", {"R": (1, 2)}),
        rfm_fast.SegmentRule("../../etc/passwd", {"R": (3, 3)}),
        rfm_fast.SegmentRule("CAN'T lose them!", {"R": (4, 5)}),
    ]
    result = rfm_fast.score(RETAIL_SLICE, **RETAIL, segments=rules)
    names = [rule.name for rule in rules]
    written = write_lists(customer_list(result), tmp_path / "lists", "parquet", segments=names)
    files = {name: path.name for name, (path, _) in written.items()}
    assert files == {
        "Can't Lose Them": "cant_lose_them.parquet",
        "../../etc/passwd": "etc_passwd.parquet",
        "CAN'T lose them!": "cant_lose_them_2.parquet",
    }
    assert sorted(p.name for p in (tmp_path / "lists").iterdir()) == sorted(files.values())
    for name, (path, rows) in written.items():
        table = pq.read_table(path)
        assert table.num_rows == rows
        assert set(table.column("segment").to_pylist()) <= {name}
    assert sum(rows for _, rows in written.values()) == result.stats.customers


runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_export_writes_one_list(tmp_path):
    output = tmp_path / "contacts.csv"
    result = run(
        "export", RETAIL_SLICE, *RETAIL_ARGS, "-o", output, "--segment", "Champions",
        "--segment", "At Risk", "--where", "monetary >= 500",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    written = pa_csv.read_csv(output)
    expected = customer_list(RESULT, segments=["Champions", "At Risk"], where="monetary >= 500")
    assert written.column("CustomerID").to_pylist() == expected.column("CustomerID").to_pylist()
    assert result.stdout.strip() == (
        f"wrote {expected.num_rows} customers (Champions, At Risk where monetary >= 500) to "
        f"{output}"
    )


def test_export_writes_one_file_per_segment(tmp_path):
    folder = tmp_path / "lists"
    result = run("export", RETAIL_SLICE, *RETAIL_ARGS, "-o", folder, "--per-segment",
                 "--segments", "compact")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.iterdir()) == [
        "at_risk.csv", "lost.csv", "loyal.csv", "new.csv", "other.csv", "vip.csv",
    ]  # fmt: skip
    assert "wrote 13 customers of VIP to" in result.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--segment", "Champs"], "no segment 'Champs' (did you mean 'Champions'?)"),
        (["--where", "monetary >> 5"], "is not a comparison"),
        (["--sort-by", "segment"], "cannot sort a customer list by 'segment'"),
        (["--per-segment", "--format", "xlsx"], "--format must be one of csv, parquet"),
    ],
)
def test_export_errors_are_one_line_and_write_nothing(tmp_path, args, fragment):
    output = tmp_path / "contacts.csv"
    result = run("export", RETAIL_SLICE, *RETAIL_ARGS, "-o", output, *args)
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert fragment in lines[0]
    assert list(tmp_path.iterdir()) == []
