"""Numbers read exactly or refused (issue 24, item 4): text amounts in several locale
conventions against a reference parser written here, and malformed ones refused with their row;
CSV customer ids whose text differs never merged."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import warnings
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from rfm_fast_cli.main import app
from typer.testing import CliRunner

import rfm_fast
from rfm_fast.core.amounts import amount_numbers
from rfm_fast.errors import RFMWarning

COLUMNS = dict(customer="customer", timestamp="ts", amount="amount", segments=None)
SPACES = " \u00a0\u202f\u2009"
GROUPS = {".": ",'\u2019" + SPACES, ",": "." + SPACES}
INVALID = object()

# --------------------------------------------------------------------------- reference parser


def _is_currency_sign(c: str) -> bool:
    return unicodedata.category(c) == "Sc"


_DOLLARS = ("US$", "R$", "C$", "A$", "NZ$", "HK$", "S$", "MX$", "NT$")
_WORDS = (*_DOLLARS, "Rs.", "Rs", "kr.", "kr", "Fr.", "zł", "Kč", "Ft", "RM", "Rp", "lei")


def _currency_at(text: str, i: int) -> int:
    """The end of a currency token starting at ``i``, or -1."""
    if _is_currency_sign(text[i]):
        return i + 1
    if re.fullmatch("[A-Z]{3}", text[i : i + 3]):
        return i + 3
    for word in _WORDS:
        if text.startswith(word, i):
            return i + len(word)
    return -1


def reference(text: str, currency: bool, decimal: str):
    """The value of ``text`` under the documented grammar, None for empty, or INVALID: a
    tokenizer and a list of the token sequences allowed (docs/semantics.md, "Text amounts")."""
    t = text.strip()
    if t == "":
        return None
    if not currency and decimal == ".":
        m = re.fullmatch(r"([+\-\u2212]?)([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+\-]?[0-9]+)?", t)
        if m is None:
            return INVALID
        value = Decimal(m[2] + (m[3] or ""))
        return -value if m[1] in ("-", "\u2212") else value
    seps = "".join(re.escape(g) for g in GROUPS[decimal])
    number = re.compile(
        rf"(?:[0-9]{{1,3}}(?:([{seps}])[0-9]{{3}})(?:\1[0-9]{{3}})*|[0-9]+)"
        rf"(?:{re.escape(decimal)}[0-9]+)?(?![0-9])"
    )
    kinds, digits, negative, i = "", "", False, 0
    while i < len(t):
        c = t[i]
        if c in SPACES:
            i += 1
        elif c in "+-\u2212":
            kinds, negative, i = kinds + "s", c != "+", i + 1
        elif c in "()" and currency:
            kinds, negative, i = kinds + c, True, i + 1
        elif "0" <= c <= "9":
            m = number.match(t, i)
            if m is None:
                return INVALID
            kinds, digits, i = kinds + "n", m[0], m.end()
        elif currency and (end := _currency_at(t, i)) > 0:
            kinds, i = kinds + "c", end
        else:
            return INVALID
    allowed = {"n", "sn"}
    if currency:
        allowed |= {"nc", "snc", "cn", "scn", "csn", "(n)", "(n)c", "c(n)", "(cn)", "(nc)"}
    if kinds not in allowed:
        return INVALID
    plain = "".join(ch for ch in digits if "0" <= ch <= "9" or ch == decimal).replace(",", ".")
    value = Decimal(plain)
    return -value if negative else value


# --------------------------------------------------------------------------- generators

LOCALES = {  # decimal separator, group separators
    "en-US": (".", ","),
    "de-DE": (",", "."),
    "fr-FR": (",", "\u202f\u00a0 "),
    "de-CH": (".", "'"),
}
CURRENCIES = ["€", "£", "$", "¥", "US$", "R$", "EUR", "GBP", "CHF", "Rs.", "kr"]


@st.composite
def amounts(draw, currency: bool | None = None):
    """A well-formed amount: (text, its value, currency needed, decimal separator)."""
    locale = draw(st.sampled_from(sorted(LOCALES)))
    decimal, groups = LOCALES[locale]
    whole = draw(st.integers(0, 10**12))
    places = draw(st.integers(0, 3))
    cents = draw(st.integers(0, 10**places - 1)) if places else 0
    digits = str(whole)
    if draw(st.booleans()):
        group = draw(st.sampled_from(groups))
        head = len(digits) % 3 or 3
        parts = [digits[:head]] + [digits[k : k + 3] for k in range(head, len(digits), 3)]
        digits = group.join(parts)
    if places:
        digits += decimal + str(cents).zfill(places)
    value = Decimal(whole) + (Decimal(cents) / 10**places if places else 0)
    use_currency = draw(st.booleans()) if currency is None else currency
    sign = draw(st.sampled_from(["", "", "+", "-", "\u2212"]))
    space = draw(st.sampled_from(["", " ", "\u00a0", "\u202f"]))
    if not use_currency:
        text = sign + digits
    else:
        symbol = draw(st.sampled_from(CURRENCIES))
        form = draw(st.sampled_from(["left", "left-signed", "right", "parens", "parens-right"]))
        if form == "left":
            text = sign + symbol + space + digits
        elif form == "left-signed":
            text = symbol + space + sign + digits
        elif form == "right":
            text = sign + digits + space + symbol
        elif form == "parens":
            text, sign = symbol + space + "(" + digits + ")", "-"
        else:
            text, sign = "(" + digits + ")" + space + symbol, "-"
    if sign in ("-", "\u2212"):
        value = -value
    return text, value, use_currency, decimal


def read(texts: list[str], currency: bool, decimal: str) -> list[float | None]:
    column = pa.array(texts, pa.string())
    return amount_numbers(
        column, "amount", 0, "currency" if currency else None, decimal
    ).to_pylist()


# --------------------------------------------------------------------------- well-formed


@given(amounts())
def test_well_formed_amounts_are_read_exactly(case):
    text, value, currency, decimal = case
    assert reference(text, True, decimal) == value  # the generator and the reference agree
    assert read([text], True, decimal) == [float(value)]
    if currency:  # without the currency format, a symbol or a code is refused
        with pytest.raises(rfm_fast.RFMError, match="row 0"):
            read([text], False, decimal)
    elif decimal == "," or not any(g in text for g in GROUPS["."]):
        assert read([text], False, decimal) == [float(value)]


@given(st.lists(amounts(currency=False), min_size=1, max_size=20), st.sampled_from([".", ","]))
def test_a_column_reads_as_the_reference_does(cases, decimal):
    texts = [text for text, *_ in cases]
    expected = [reference(text, True, decimal) for text in texts]
    if INVALID in expected:
        with pytest.raises(rfm_fast.RFMError, match=rf"row {expected.index(INVALID)} "):
            read(texts, True, decimal)
    else:
        assert read(texts, True, decimal) == [float(v) for v in expected]


# --------------------------------------------------------------------------- malformed


def _mutations(text: str, decimal: str, group: str) -> dict[str, str]:
    """Malformed versions of a well-formed ``text``: the key says what was broken."""
    last = max(i for i, c in enumerate(text) if c.isdigit())
    first = min(i for i, c in enumerate(text) if c.isdigit())
    out = {
        "exponent": text[: last + 1] + "e3" + text[last + 1 :],
        "hex": text[:first] + "0x" + text[first:],
        "trailing junk": text + " x1",
        "two decimal separators": text[: last + 1]
        + decimal
        + "5"
        + decimal
        + "5"
        + text[last + 1 :],
        "letter for a digit": text[:last] + "O" + text[last + 1 :],
        "doubled group": text[: first + 1] + group + group + text[first + 1 :],
    }
    grouped = re.search(rf"[0-9]{re.escape(group)}[0-9]{{3}}", text)
    if grouped is not None:
        at = grouped.start() + 1
        out["group of two"] = text[: at + 3] + text[at + 4 :]  # one digit fewer after it
        out["group moved"] = text[:at] + text[at + 1] + group + text[at + 2 :]
    return out


ALWAYS_BAD = {"exponent", "hex", "trailing junk", "two decimal separators", "letter for a digit",
              "doubled group"}  # fmt: skip


@given(amounts(), st.integers(0, 5), st.data())
def test_malformed_amounts_are_refused_with_their_row(case, row, data):
    text, _, currency, decimal = case
    group = GROUPS[decimal][0]
    mutations = _mutations(text, decimal, group)
    kind = data.draw(st.sampled_from(sorted(mutations)))
    bad = mutations[kind]
    expected = reference(bad, currency, decimal)
    plain = not currency and decimal == "."  # a plain number may have an exponent
    if kind in ALWAYS_BAD and not (plain and kind == "exponent"):
        assert expected is INVALID, (kind, bad)
    texts = ["1"] * row + [bad] + ["2"]
    if expected is INVALID:
        with pytest.raises(rfm_fast.RFMError) as error:
            read(texts, currency, decimal)
        message = str(error.value)
        assert f"amount column 'amount' is text, and row {row} (counting from 0)" in message
        assert repr(bad)[:30] in message
        assert "\n" not in message
    else:  # a mutation can still be an amount (a moved group separator in a short number)
        assert read(texts, currency, decimal)[row] == float(expected)


@pytest.mark.parametrize(
    "text, currency, decimal, expected",
    [
        ("12.99", False, ",", "--decimal ."),  # was read as 1299
        (".5", False, ",", "--decimal ."),  # was read as 5
        ("€ 7,00", True, ".", "--decimal ,"),  # was 700
        ("1.000,00 €", True, ".", "--decimal ,"),  # was 1.0
        ("1e3", True, ".", "exponents"),  # was 13
        ("0x10", True, ".", "hexadecimal"),  # was 10
        ("0x10", False, ".", "hexadecimal"),
        ("12,50", False, ".", "--decimal ,"),
        ("1,2345.00", True, ".", "digits grouped in threes"),
        ("€12 €", True, ".", "a currency symbol or code"),
        ("--12", True, ".", "one decimal separator"),
        ("12-", True, ".", "a sign"),
        ("n/a", False, ".", "--amount-format currency"),
    ],
)
def test_the_misreads_of_the_issue_are_refused_with_the_fix(text, currency, decimal, expected):
    assert reference(text, currency, decimal) is INVALID
    with pytest.raises(rfm_fast.RFMError, match=re.escape(expected)):
        read(["3", text], currency, decimal)


@pytest.mark.parametrize(
    "text, currency, decimal, value",
    [
        ("\u221212.00", True, ".", -12.0),  # was +12
        ("\u221212.00", False, ".", -12.0),
        ("€ 7,00", True, ",", 7.0),
        ("1.000,00 €", True, ",", 1000.0),
        ("1\u202f234,56", False, ",", 1234.56),
        ("1'234.56 CHF", True, ".", 1234.56),
        ("EUR -1.234,5", True, ",", -1234.5),
        ("($1,234.50)", True, ".", -1234.5),
        ("Rs. 1,200", True, ".", 1200.0),
        ("1e3", False, ".", 1000.0),  # a plain number as a program writes it
        ("", True, ",", None),
    ],
)
def test_amounts_of_the_documented_forms(text, currency, decimal, value):
    assert read([text], currency, decimal) == [value]
    assert reference(text, currency, decimal) == (None if value is None else Decimal(str(value)))


# --------------------------------------------------------------------------- through CSV files


def _csv(path: Path, rows: list[tuple[str, str]], delimiter: str = ";") -> Path:
    lines = ["customer;ts;amount".replace(";", delimiter)]
    lines += [f'{c}{delimiter}2024-01-01{delimiter}"{a}"' for c, a in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "texts, options, monetary",
    [
        (["1.234", "2"], {"decimal": ","}, 1236.0),  # Arrow alone reads 1.234 as a float
        (["12.50", "3"], {"amount_format": "currency"}, 15.5),
    ],
)
def test_a_csv_amount_in_a_named_format_is_read_by_its_grammar(tmp_path, texts, options, monetary):
    path = _csv(tmp_path / "eu.csv", [("1", t) for t in texts])
    result = rfm_fast.score(path, **COLUMNS, delimiter=";", returns="purchase", **options)
    assert result.table.column("monetary").to_pylist() == [monetary]


def test_a_csv_amount_that_arrow_reads_as_a_number_is_refused_with_a_comma_decimal(tmp_path):
    path = _csv(tmp_path / "dot.csv", [("1", "12.99"), ("2", "3.50")])
    with pytest.raises(rfm_fast.RFMError, match=r"row 0 \(counting from 0\) has '12.99'"):
        rfm_fast.score(path, **COLUMNS, delimiter=";", decimal=",")


@given(st.lists(amounts(), min_size=1, max_size=12))
def test_csv_amounts_of_one_convention_sum_exactly(tmp_path_factory, cases):
    decimal = cases[0][3]
    cases = [c for c in cases if c[3] == decimal]
    path = _csv(tmp_path_factory.mktemp("csv") / "a.csv", [("1", c[0]) for c in cases])
    result = rfm_fast.score(
        path, **COLUMNS, delimiter=";", returns="purchase", amount_format="currency",
        decimal=decimal,
    )  # fmt: skip
    expected = float(sum(c[1] for c in cases))
    assert result.table.column("monetary").to_pylist() == [pytest.approx(expected, abs=1e-3)]


def test_the_cli_refuses_a_misread_amount_in_one_line(tmp_path):
    path = _csv(tmp_path / "in.csv", [("1", "3,00"), ("2", "12.99")])
    output = tmp_path / "out.csv"
    result = CliRunner().invoke(
        app,
        ["score", str(path), "--customer", "customer", "--timestamp", "ts", "--amount",
         "amount", "--delimiter", ";", "--decimal", ",", "-o", str(output)],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "row 1 (counting from 0) has '12.99'" in lines[0], result.stderr
    assert not output.exists()


def test_text_amounts_in_a_table_follow_the_same_grammar():
    table = pa.table(
        {"customer": [1, 2], "ts": pa.array([dt.date(2024, 1, 1)] * 2), "amount": ["1", "2.5"]}
    )
    with pytest.raises(rfm_fast.RFMError, match="row 1"):
        rfm_fast.score(table, **COLUMNS, decimal=",")


# --------------------------------------------------------------------------- CSV customer ids


def _spell(value: int, how: str) -> str:
    if how == "padded":
        return str(value).zfill(len(str(value)) + 2)
    if how == "plus":
        return f"+{value}"
    if how == "float":
        return f"{value}.0"
    if how == "wide":
        return str(value).zfill(8)
    return str(value)


def _integers_allowed(texts: list[str]) -> bool:
    """The documented rule, written again: canonical integers, one width of digits, or
    canonical integers with ``.0``."""
    canonical = all(re.fullmatch(r"0|-?[1-9][0-9]{0,18}", t) for t in texts)
    if canonical and all(-(2**63) <= int(t) < 2**63 for t in texts):
        return True
    if all(re.fullmatch(r"[0-9]+", t) for t in texts) and len({len(t) for t in texts}) == 1:
        return int(max(texts)) < 2**63
    return all(re.fullmatch(r"(0|-?[1-9][0-9]{0,15})\.0", t) for t in texts)


ID_SPELLINGS = ["plain", "plain", "padded", "plus", "float", "wide"]


@given(
    st.lists(
        st.tuples(st.integers(-50, 10**6), st.sampled_from(ID_SPELLINGS)), min_size=1, max_size=40
    ),
    st.sampled_from([1, 3, 7, 1 << 20]),
)
def test_csv_ids_whose_text_differs_are_never_merged(tmp_path_factory, ids, batch_rows):
    texts = [_spell(abs(v) if how in ("padded", "wide") else v, how) for v, how in ids]
    path = tmp_path_factory.mktemp("ids") / "ids.csv"
    path.write_text("customer,ts,amount\n" + "".join(f"{t},2024-01-01,1\n" for t in texts))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RFMWarning)  # a later batch that makes them text
        result = rfm_fast.score(path, **COLUMNS, batch_rows=batch_rows)
    customers = result.table.column("customer").to_pylist()
    counts = dict(zip(customers, result.table.column("frequency").to_pylist(), strict=True))
    if _integers_allowed(texts):
        assert result.table.schema.field("customer").type == pa.int64()
        expected = Counter(int(float(t)) for t in texts)
        assert len(expected) == len(set(texts))  # the rule merges no two spellings
    else:
        assert result.table.schema.field("customer").type == pa.string()
        expected = Counter(texts)
    assert counts == dict(expected)


def test_ids_that_turn_padded_further_on_read_the_file_again_as_text(tmp_path):
    path = tmp_path / "late.csv"
    rows = [f"{i},2024-01-01,1" for i in range(1, 6)] + ["007,2024-01-02,1", "07,2024-01-02,1"]
    path.write_text("customer,ts,amount\n" + "\n".join(rows) + "\n")
    merge = r"'customer' .* no two spellings merge\): read the file again"
    with pytest.warns(RFMWarning, match=merge):
        result = rfm_fast.score(path, **COLUMNS, batch_rows=2)
    assert result.table.column("customer").to_pylist() == ["007", "07", "1", "2", "3", "4", "5"]


def test_zero_padded_codes_of_one_width_stay_integers_in_any_batching(tmp_path):
    path = tmp_path / "codes.csv"
    codes = ["00001", "00002", "00010", "12345", "23570"]
    path.write_text("customer,ts,amount\n" + "".join(f"{c},2024-01-01,1\n" for c in codes))
    for batch_rows in (1, 2, 3, 1 << 20):
        result = rfm_fast.score(path, **COLUMNS, batch_rows=batch_rows)
        assert result.table.column("customer").to_pylist() == [1, 2, 10, 12345, 23570]


def test_a_folder_of_csv_files_reads_its_ids_one_way(tmp_path):
    (tmp_path / "day").mkdir()
    (tmp_path / "day" / "a.csv").write_text("customer,ts,amount\n7,2024-01-01,1\n8,2024-01-01,1\n")
    (tmp_path / "day" / "b.csv").write_text("customer,ts,amount\n007,2024-01-02,1\n")
    with pytest.warns(RFMWarning, match="as text"):
        result = rfm_fast.score(tmp_path / "day", **COLUMNS)
    assert result.table.column("customer").to_pylist() == ["007", "7", "8"]


@pytest.mark.parametrize(
    "lines, delimiter, expected",
    [
        (["17850,2024-01-01,1", "13047,2024-01-02,1"], None, [13047, 17850]),
        (["17850.0,2024-01-01,1", ",2024-01-02,1"], None, [17850]),  # pandas float ids
        (["00001 20240101 1", "00002 20240101 1"], "whitespace", [1, 2]),  # CDNOW codes
        (["007 20240101 1", "7 20240101 1"], "whitespace", ["007", "7"]),
        (["9223372036854775808,2024-01-01,1"], None, ["9223372036854775808"]),
        (["C17,2024-01-01,1", "7,2024-01-01,1"], None, ["7", "C17"]),
    ],
)
def test_csv_ids_are_integers_only_where_no_spellings_merge(tmp_path, lines, delimiter, expected):
    sep = " " if delimiter else ","
    path = tmp_path / "ids.csv"
    path.write_text(sep.join(["customer", "ts", "amount"]) + "\n" + "\n".join(lines) + "\n")
    options = {"delimiter": delimiter, "timestamp_format": "%Y%m%d"} if delimiter else {}
    result = rfm_fast.score(path, **COLUMNS, **options)
    assert result.table.column("customer").to_pylist() == expected


def test_a_customer_type_given_in_the_schema_is_kept(tmp_path):
    path = tmp_path / "given.csv"
    path.write_text("customer,ts,amount\n007,2024-01-01,1\n7,2024-01-01,1\n")
    result = rfm_fast.score(path, **COLUMNS, schema="customer=int64")
    assert result.table.column("frequency").to_pylist() == [2]  # what the user asked for
