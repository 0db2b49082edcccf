"""A mergeable quantile sketch for ``method="approx"``: a histogram over log-spaced buckets.

Every value ``v`` falls in one bucket; buckets are ordered like the values, and two values share
a bucket only if they are within a relative distance ``relative_error`` of each other (the
DDSketch construction: bucket ``k`` of positive values spans ``(gamma**(k-1), gamma**k]`` with
``gamma = (1 + a) / (1 - a)``). The sketch stores a count per bucket, so:

* it merges exactly: adding the counts of two sketches gives the sketch of the union, whatever
  the partitioning, and it is deterministic for a given set of values;
* its size grows with the spread of the values (about ``ln(max/min) / (2 a)`` buckets), not with
  their number;
* the approximate rank of a value, "how many values are worse", is exact up to the values that
  share its bucket.

**Error bound of the scores.** With ``less~(v)`` the number of values in buckets below ``v``'s,
the approximate score is ``1 + floor(bins * less~(v) / N)``: exactly the score that ``method=
"exact"`` gives when every value is replaced by its bucket. So a customer's approximate score is
the exact score of some value within relative distance ``relative_error`` of its own, and
customers whose values differ by more than ``2 * relative_error`` (relative) are never tied.
"""

from __future__ import annotations

import numpy as np

from rfm_fast.errors import RFMError

DEFAULT_RELATIVE_ERROR = 0.005
_OFFSET = 1 << 24  # keeps positive buckets above the zero bucket and negative ones below it


def bucket_keys(values: np.ndarray, relative_error: float = DEFAULT_RELATIVE_ERROR) -> np.ndarray:
    """The bucket of each value as an int64 key that sorts like the values."""
    if not 1e-4 <= relative_error < 1:
        raise RFMError(f"relative_error must be in [0.0001, 1); got {relative_error}")
    values = np.asarray(values, dtype=np.float64)
    log_gamma = np.log((1 + relative_error) / (1 - relative_error))
    magnitude = np.abs(values)
    keys = np.zeros(values.shape[0], dtype=np.int64)
    nonzero = magnitude > 0
    k = np.ceil(np.log(magnitude[nonzero]) / log_gamma).astype(np.int64) + _OFFSET
    keys[nonzero] = np.where(values[nonzero] > 0, k, -k)
    return keys


class LogHistogram:
    """Counts per log-spaced bucket (see the module docstring); merge with ``+``.

    Examples
    --------
    >>> import numpy as np
    >>> a = LogHistogram.of(np.array([1.0, 10.0, 10.01]))
    >>> b = LogHistogram.of(np.array([100.0]))
    >>> merged = LogHistogram.from_bytes((a + b).to_bytes())
    >>> merged.count, merged.below(np.array([10.0, 100.0, 1000.0])).tolist()
    (4, [1, 3, 4])
    """

    def __init__(
        self,
        keys: np.ndarray,
        counts: np.ndarray,
        relative_error: float = DEFAULT_RELATIVE_ERROR,
    ) -> None:
        self.keys = np.asarray(keys, dtype=np.int64)  # sorted, distinct
        self.counts = np.asarray(counts, dtype=np.int64)
        self.relative_error = float(relative_error)

    @classmethod
    def of(cls, values: np.ndarray, relative_error: float = DEFAULT_RELATIVE_ERROR):
        keys, counts = np.unique(bucket_keys(values, relative_error), return_counts=True)
        return cls(keys, counts, relative_error)

    @property
    def count(self) -> int:
        return int(self.counts.sum())

    def __add__(self, other: LogHistogram) -> LogHistogram:
        if other.relative_error != self.relative_error:
            raise RFMError("cannot merge sketches made with different relative errors")
        keys = np.concatenate([self.keys, other.keys])
        counts = np.concatenate([self.counts, other.counts])
        merged, where = np.unique(keys, return_inverse=True)
        totals = np.zeros(merged.shape[0], dtype=np.int64)
        np.add.at(totals, where, counts)
        return LogHistogram(merged, totals, self.relative_error)

    def below(self, values: np.ndarray) -> np.ndarray:
        """For each value, how many sketched values lie in lower buckets."""
        at = np.searchsorted(self.keys, bucket_keys(values, self.relative_error), side="left")
        return np.concatenate([[0], np.cumsum(self.counts)])[at]

    def above(self, values: np.ndarray) -> np.ndarray:
        """For each value, how many sketched values lie in higher buckets."""
        at = np.searchsorted(self.keys, bucket_keys(values, self.relative_error), side="right")
        return self.count - np.concatenate([[0], np.cumsum(self.counts)])[at]

    def to_bytes(self) -> bytes:
        header = np.array([self.keys.shape[0]], dtype=np.int64).tobytes()
        error = np.array([self.relative_error], dtype=np.float64).tobytes()
        return header + error + self.keys.tobytes() + self.counts.tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> LogHistogram:
        n = int(np.frombuffer(data[:8], dtype=np.int64)[0])
        error = float(np.frombuffer(data[8:16], dtype=np.float64)[0])
        keys = np.frombuffer(data[16 : 16 + 8 * n], dtype=np.int64)
        counts = np.frombuffer(data[16 + 8 * n : 16 + 16 * n], dtype=np.int64)
        return cls(keys.copy(), counts.copy(), error)
