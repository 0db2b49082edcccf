"""The built-in example data set, and a reader for the CDNOW text files it comes from.

The example is the CDNOW master file (Fader & Hardie): every purchase of 23,570 customers who
first bought in Q1 1997, until the end of June 1998, shipped as a small Parquet file.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

EXAMPLE_FILE = "cdnow.parquet"
EXAMPLE_COLUMNS = {"customer": "customer_id", "timestamp": "date", "amount": "dollar_value"}
"""Keyword arguments of :func:`rfm_fast.score` for the example."""


def example_path() -> Path:
    """Path of the built-in example (CDNOW master, 69,659 purchases of 23,570 customers).

    Examples
    --------
    >>> import rfm_fast
    >>> result = rfm_fast.score(rfm_fast.datasets.example_path(),
    ...                         **rfm_fast.datasets.EXAMPLE_COLUMNS)
    >>> result.stats.customers
    23570
    """
    return Path(str(resources.files("rfm_fast") / "data" / EXAMPLE_FILE))


def load_example() -> pa.Table:
    """The built-in example as an Arrow table: customer_id, date, number_of_cds, dollar_value."""
    return pq.read_table(example_path())


def read_cdnow(path: str | os.PathLike) -> pa.Table:
    """Read a CDNOW text file (``CDNOW_master.txt`` or ``CDNOW_sample.txt``) as an Arrow table.

    The master file has the columns ``customer_id date number_of_cds dollar_value`` (with a
    header line); the sample file has ``master_id sample_id date number_of_cds dollar_value``
    (no header). Dates are ``yyyymmdd`` and become ``date32``.
    """
    lines = Path(path).read_text(encoding="ascii").split()
    first_is_header = not lines[0].isdigit()
    if first_is_header:
        width = 4
        names = ["customer_id", "date", "number_of_cds", "dollar_value"]
        lines = lines[width:]
    else:
        width = 5
        names = ["master_id", "sample_id", "date", "number_of_cds", "dollar_value"]
    cells = np.array(lines, dtype=object).reshape(-1, width)
    columns = {}
    for i, name in enumerate(names):
        values = cells[:, i].astype(str)
        if name == "date":
            parsed = pc.strptime(pa.array(values), format="%Y%m%d", unit="s")
            columns[name] = parsed.cast(pa.date32())
        elif name == "dollar_value":
            columns[name] = pa.array(values.astype(np.float64))
        else:
            columns[name] = pa.array(values.astype(np.int32))
    return pa.table(columns)
