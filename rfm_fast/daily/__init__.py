"""Daily scoring: a saved state that takes each day's orders (:class:`DailyState`), exactly.

* :mod:`rfm_fast.daily.state`: the state, its loads and the changes of each update;
* :mod:`rfm_fast.daily.state_file`: the file it is saved in (checksum, format version, atomic
  and durable replacement);
* :mod:`rfm_fast.daily.lock`: one writer per state (an OS lock beside the state file).

The names are imported on first use, as :mod:`rfm_fast`'s are: the lock (which the ``rfm``
command imports at its start) loads no engine module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rfm_fast._lazy import lazy_exports

if TYPE_CHECKING:  # for type checkers and the docs; at run time, imported on first use (below)
    from rfm_fast.daily.state import DailyState, DailyUpdate, Load

__all__ = ["DailyState", "DailyUpdate", "Load"]

__getattr__, __dir__ = lazy_exports(
    __name__, {"rfm_fast.daily.state": ("DailyState", "DailyUpdate", "Load")}
)
