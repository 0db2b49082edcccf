"""Daily scoring: a saved state that takes each day's orders (:class:`DailyState`), exactly.

* :mod:`rfm_fast.daily.state`: the state, its loads and the changes of each update;
* :mod:`rfm_fast.daily.state_file`: the file it is saved in (checksum, format version, atomic
  and durable replacement);
* :mod:`rfm_fast.daily.lock`: one writer per state (an OS lock beside the state file).
"""

from rfm_fast.daily.state import DailyState, DailyUpdate, Load

__all__ = ["DailyState", "DailyUpdate", "Load"]
