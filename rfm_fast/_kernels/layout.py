"""The layout of the kernels' arrays: the words of records, slots and run records, the counter
slots, the ``returns`` codes, the limits of exact sums and the empty-slot marker.

Plain constants, without Numba: the Python layer reads them (to size and read the arrays it
passes to kernels) without loading Numba, and the kernels import them from here. They are
compile-time constants inside the kernels, so changing one needs the compiled kernels rebuilt
(``python -m rfm_fast._kernels.build``).
"""

from __future__ import annotations

import numpy as np

EMPTY = -1
"""An empty slot of the tables of :mod:`rfm_fast._kernels.hashing`."""

FRACTION_BITS = 60
FRACTION_ONE = np.int64(1) << np.int64(FRACTION_BITS)
AMOUNT_LIMIT = 2.0**62
"""Each amount must stay below this absolute value (so that adding one, with its carry, to a
sum can be checked for overflow without overflowing)."""
INT_LIMIT = np.int64(1) << np.int64(62)
"""The same limit, for integer amounts."""
INT64_MAX = np.int64(np.iinfo(np.int64).max)
INT64_MIN = np.int64(np.iinfo(np.int64).min)
SUM_LIMIT = INT64_MAX - np.int64(1)
"""The largest whole part of a sum, in absolute value: ``2**63 - 2``, so that a sum's whole
part plus a carry, and its negation, stay int64."""
SUM_OVERFLOW = INT64_MIN
"""The fraction word of a sum that left the int64 range: it stays so through every later
addition and merge, and :func:`sums_to_float` reports it (a valid fraction is below ``2**60``
in absolute value)."""

# Slots of the per-thread ``counters`` arrays (see rfm_fast._kernels.buffered).
DROPPED_NULL_CUSTOMER = 0
DROPPED_NULL_TIMESTAMP = 1
DROPPED_AFTER_AS_OF = 2
NULL_AMOUNT = 3
ROWS_USED = 4
MAX_TIMESTAMP = 5
RETURN_ROWS = 6  # rows with a negative amount: netted, dropped or counted as purchases
N_COUNTERS = 7

# How rows with a negative amount (returns) are taken: the ``returns`` argument of the kernels.
RETURNS_PURCHASE = 0  # as purchases
RETURNS_NET = 1  # netted into the sum, but not a purchase
RETURNS_DROP = 2  # left out

# Words of a record.
R_KEY = 0
R_TS = 1
R_AMOUNT = 2
R_VALUE = 3
R_FLAGS = 4
RECORD_WIDTH = 3
RECORD_WIDTH_DISTINCT = 5
VALUE_IS_NULL = 1
TEXT_LENGTH_BITS = 24
"""A text reference is one int64: the position of the bytes, shifted by these bits, and their
length."""
TEXT_LENGTH_MASK = (1 << TEXT_LENGTH_BITS) - 1
MAX_TEXT_KEY_BYTES = TEXT_LENGTH_MASK
"""The longest text key (16 MiB) a reference can hold."""

# Words of a slot.
KEY = 0
FIRST = 1
LAST = 2
ROWS = 3  # 0: the slot is empty
SUM_WHOLE = 4
SUM_FRACTION = 5
# DISTINCT: with distinct values, the null orders (each one of its own) while folding, to which
# compact_slots' callers add the rest; without, the returns among ROWS (with net returns).
DISTINCT = 6
LAST_VALUE = 7  # the customer's latest distinct value: a repeat is not appended to the pairs
SLOT_WIDTH = 8
N_TOTALS = DISTINCT - FIRST + 1
# Columns of the compacted totals (compact_slots, gather_totals): slot words FIRST..DISTINCT.
TOTAL_FIRST = FIRST - FIRST
TOTAL_LAST = LAST - FIRST
TOTAL_ROWS = ROWS - FIRST
TOTAL_SUM_WHOLE = SUM_WHOLE - FIRST
TOTAL_SUM_FRACTION = SUM_FRACTION - FIRST
TOTAL_DISTINCT = DISTINCT - FIRST
"""Totals per customer that :func:`compact_slots` writes: FIRST, LAST, ROWS, SUM_WHOLE,
SUM_FRACTION, DISTINCT."""

# Run records: a run of rows of one customer (and, with distinct values, of one value) that
# are next to each other in the input is scattered as one record of its totals. A
# customer-sorted file, or an order's lines, then folds one record a run instead of one a row.
U_KEY = 0
U_FIRST = 1  # the run's earliest purchase (INT64_MAX: none)
U_LAST = 2  # its latest purchase (INT64_MIN: none)
U_ROWS = 3
U_SUM_WHOLE = 4
U_SUM_FRACTION = 5
U_PURCHASES = 6  # rows that are purchases (the others are net returns)
U_VALUE = 7
U_FLAGS = 8
RUN_WIDTH = 7
RUN_WIDTH_DISTINCT = 9

# Sorting (rfm_fast._kernels.sorting)
RADIX_BITS = 8
"""Bits of the key that one radix pass sorts by (256 counters: they stay in L1)."""

# Write-combining blocks of the row scatter (rfm_fast._kernels.buffered)
BLOCK_RECORDS = 8
"""Records of a partition's block in :func:`scatter_int_rows`: a whole number of 64-byte cache
lines for any record width (8 words of 8 bytes make a line)."""
