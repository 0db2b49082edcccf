"""A folder of Parquet files in subfolders (a data lake export, Hive-style ``year=2024/month=01``
folders) read whole as one input, with the partition columns, through ``pyarrow.dataset``.

A flat folder (data files only at its top) is read by :func:`rfm_fast.core.io.open_source` one
file after the other; a folder with data files in its subfolders comes here, and is read whole
or refused: every Parquet file below it (but hidden ones and those whose name starts with
``_``, such as ``_SUCCESS``), with the columns of the ``key=value`` folder names, and the files'
types unified (``int32`` with ``int64``, integers with floats); files whose types cannot be
unified, a needed column missing from a file, or CSV and Arrow IPC files in subfolders are
refused before a row is read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from rfm_fast.core.io import (
    CSV_SUFFIXES,
    IPC_SUFFIXES,
    PARQUET_SUFFIXES,
    Source,
    guarded_batches,
)
from rfm_fast.errors import RFMError


def partitioned_source(data: str | os.PathLike, batch_rows: int) -> Source | None:
    """The folder ``data`` as one input when it holds data files in subfolders; None for
    anything else (a file, a glob, a flat folder).

    Raises
    ------
    RFMError
        For a Delta Lake table, CSV or Arrow IPC files in subfolders, Parquet files that cannot
        be read or whose column types cannot be unified.
    """
    folder = Path(data)
    if not folder.is_dir():
        return None
    files = _data_files(folder)
    if all(f.parent == folder for f in files):
        return None
    if (folder / "_delta_log").is_dir():
        raise RFMError(
            f"input folder {folder} is a Delta Lake table (it has _delta_log): its Parquet files "
            "include removed ones; export the table as of a version, or read it with the "
            "deltalake package and pass the Arrow table"
        )
    other = [f for f in files if not f.name.lower().endswith(PARQUET_SUFFIXES)]
    if other:
        raise RFMError(
            f"input folder {folder} has data files in subfolders, read as one Parquet dataset, "
            f"but {other[0].relative_to(folder)} is not Parquet: convert it, or give its files "
            "as a glob"
        )
    return _dataset_source(folder, files, batch_rows)


def _data_files(folder: Path) -> list[Path]:
    """The data files below ``folder`` (hidden and ``_`` files and folders left out), sorted;
    linked folders are followed, and a folder reached twice (a link loop, or two links to one
    folder: its rows would count twice) is refused."""
    suffixes = PARQUET_SUFFIXES + CSV_SUFFIXES + IPC_SUFFIXES
    found = []
    seen: dict[str, str] = {}
    for root, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            raise RFMError(
                f"input folder {folder} reaches the folder {real} twice ({seen[real]} and "
                f"{root}, through a link): its files would be read twice; remove the link"
            )
        seen[real] = root
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        found += [
            Path(root, n)
            for n in names
            if not n.startswith((".", "_")) and n.lower().endswith(suffixes)
        ]
    return sorted(found)


def _dataset_source(folder: Path, files: list[Path], batch_rows: int) -> Source:
    import pyarrow.dataset as ds  # (here: importing it loads pandas, a quarter of a second)

    partitioning = ds.HivePartitioning.discover(infer_dictionary=False)
    try:
        dataset = ds.dataset(
            [str(f) for f in files],
            format="parquet",
            partitioning=partitioning,
            partition_base_dir=str(folder),
        )
        fragments = list(dataset.get_fragments())
        unified = fragments[0].physical_schema
        for fragment in fragments[1:]:
            unified = _unified(unified, fragment, folder)
        keys = dataset.partitioning.schema
        schema = pa.unify_schemas([unified, keys])
        dataset = ds.dataset(
            [str(f) for f in files],
            schema=schema,
            format="parquet",
            partitioning=partitioning,
            partition_base_dir=str(folder),
        )
        total = sum(f.metadata.num_rows for f in fragments)
    except (pa.ArrowException, OSError) as exc:
        raise RFMError(f"cannot read input folder {folder} as a Parquet dataset: {exc}") from None
    name = f"{folder} ({len(files)} files)"
    options = ds.ParquetFragmentScanOptions(pre_buffer=False)  # no read-ahead of whole files

    def opener(cols: list[str]) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        for fragment in fragments:
            missing = [c for c in cols if c not in keys.names]
            missing = [c for c in missing if fragment.physical_schema.get_field_index(c) < 0]
            if missing:
                where = Path(fragment.path).relative_to(folder)
                raise RFMError(
                    f"{where} in input folder {folder} has no column {missing[0]!r}; every file "
                    "of a folder must have the columns a run reads"
                )
        batches = dataset.to_batches(  # read-ahead of one file and two batches: bounded memory
            columns=cols,
            batch_size=batch_rows,
            batch_readahead=2,
            fragment_readahead=1,
            use_threads=False,
            fragment_scan_options=options,
        )
        return pa.schema([schema.field(c) for c in cols]), guarded_batches(name, "Parquet", batches)

    return Source(name, schema.names, total, opener)


def _unified(schema: pa.Schema, fragment: Any, folder: Path) -> pa.Schema:
    try:
        return pa.unify_schemas([schema, fragment.physical_schema], promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid) as exc:
        where = Path(fragment.path).relative_to(folder)
        raise RFMError(
            f"{where} in input folder {folder} has column types that do not go with those of "
            f"the files before it ({exc}); cast them to one type in every file"
        ) from None
