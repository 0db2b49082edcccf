"""Segments: ordered rules over the R, F and M scores; the first rule that matches wins.

Rules come from the built-in default map (5 bins) or from a TOML file, parsed with
:mod:`tomllib` and validated; nothing in a rules file is ever evaluated as code.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from rfm_fast.core.arrow import from_numpy, from_strings
from rfm_fast.errors import RFMError

SCORE_NAMES = ("R", "F", "M")
OTHER = "Other"


@dataclass(frozen=True)
class SegmentRule:
    """A named rule: every listed score must lie in its inclusive ``(low, high)`` range."""

    name: str
    ranges: dict[str, tuple[int, int]]

    def matches(self, scores: dict[str, np.ndarray]) -> np.ndarray:
        """Boolean mask of the customers this rule matches."""
        n = next(iter(scores.values())).shape[0]
        mask = np.ones(n, dtype=bool)
        for name, (low, high) in self.ranges.items():
            mask &= (scores[name] >= low) & (scores[name] <= high)
        return mask


def _rule(name: str, **ranges: tuple[int, int]) -> SegmentRule:
    return SegmentRule(name, dict(ranges))


DEFAULT_RULES: tuple[SegmentRule, ...] = (
    _rule("Champions", R=(5, 5), F=(4, 5)),
    _rule("Loyal Customers", R=(3, 4), F=(4, 5)),
    _rule("Potential Loyalists", R=(4, 5), F=(2, 3)),
    _rule("New Customers", R=(5, 5), F=(1, 1)),
    _rule("Promising", R=(4, 4), F=(1, 1)),
    _rule("Need Attention", R=(3, 3), F=(3, 3)),
    _rule("About To Sleep", R=(3, 3), F=(1, 2)),
    _rule("At Risk", R=(1, 2), F=(3, 4)),
    _rule("Can't Lose Them", R=(1, 2), F=(5, 5)),
    _rule("Hibernating", R=(1, 2), F=(1, 2)),
)
DEFAULT_BINS = 5

SegmentsSpec = str | os.PathLike | Sequence[SegmentRule] | None


def resolve_rules(segments: SegmentsSpec, bins: int) -> tuple[SegmentRule, ...]:
    """The rules for ``segments``: ``"default"``, ``None``/``"none"``, a TOML path, or rules."""
    if segments is None or (isinstance(segments, str) and segments.lower() == "none"):
        return ()
    if isinstance(segments, str) and segments == "default":
        if bins != DEFAULT_BINS:
            raise RFMError(
                f"the default segment map is defined for {DEFAULT_BINS} bins, and bins is {bins}; "
                "pass a rules file (segments='rules.toml', CLI: --segments rules.toml) or "
                "segments=None (CLI: --segments none)"
            )
        return DEFAULT_RULES
    if isinstance(segments, str | os.PathLike):
        return load_rules(segments, bins)
    rules = tuple(segments)
    for rule in rules:
        if not isinstance(rule, SegmentRule):
            raise RFMError(
                f"segments must be 'default', None, a TOML file path or SegmentRule objects; "
                f"found {rule!r}"
            )
        for name, (low, high) in rule.ranges.items():
            _check_range(f"rule {rule.name!r}", name, low, high, bins)
    return rules


def load_rules(path: str | os.PathLike, bins: int) -> tuple[SegmentRule, ...]:
    """Parse and validate a TOML rules file (see docs/semantics.md, "Segments")."""
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RFMError(f"segment rules file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RFMError(f"cannot read segment rules file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RFMError(f"segment rules file {path} is not valid TOML: {exc}") from None
    return parse_rules(document, bins, source=str(path))


def parse_rules(document: dict, bins: int, source: str = "rules") -> tuple[SegmentRule, ...]:
    """Validate a parsed rules document: ``{"segment": [{"name": ..., "R": ..., ...}, ...]}``."""
    unknown = set(document) - {"segment"}
    if unknown:
        raise RFMError(
            f"{source}: unknown top-level key(s) {', '.join(sorted(unknown))}; "
            "rules are written as [[segment]] tables"
        )
    entries = document.get("segment")
    if not isinstance(entries, list) or not entries:
        raise RFMError(f"{source}: no [[segment]] tables found; write at least one rule")
    rules, seen = [], set()
    for number, entry in enumerate(entries, start=1):
        where = f"{source}, rule {number}"
        if not isinstance(entry, dict):
            raise RFMError(f"{where}: expected a [[segment]] table")
        extra = set(entry) - {"name", *SCORE_NAMES}
        if extra:
            raise RFMError(
                f"{where}: unknown key(s) {', '.join(sorted(extra))}; allowed keys are name, "
                f"{', '.join(SCORE_NAMES)}"
            )
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise RFMError(f"{where}: every rule needs a non-empty text 'name'")
        if name in seen:
            raise RFMError(f"{where}: segment name {name!r} is used twice")
        if name == OTHER:
            raise RFMError(f"{where}: {OTHER!r} is reserved for customers no rule matches")
        seen.add(name)
        ranges = {
            key: _parse_scores(entry[key], f"{where} ({name})", key, bins)
            for key in SCORE_NAMES
            if key in entry
        }
        if not ranges:
            raise RFMError(f"{where} ({name}): give at least one of R, F, M")
        rules.append(SegmentRule(name, ranges))
    return tuple(rules)


def _parse_scores(value: object, where: str, key: str, bins: int) -> tuple[int, int]:
    """``5``, ``"4-5"`` or ``[4, 5]`` -> an inclusive (low, high) range."""
    if isinstance(value, bool):
        raise RFMError(f"{where}: {key} must be a score, a range 'lo-hi' or a list; got {value!r}")
    if isinstance(value, int):
        low = high = value
    elif isinstance(value, str):
        parts = value.replace(" ", "").split("-")
        if len(parts) not in (1, 2) or not all(p.isdigit() for p in parts):
            raise RFMError(f"{where}: {key} = {value!r} is not a score or a range such as '4-5'")
        low, high = int(parts[0]), int(parts[-1])
    elif (
        isinstance(value, list)
        and value
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        low, high = min(value), max(value)
        if sorted(value) != list(range(low, high + 1)):
            raise RFMError(
                f"{where}: {key} = {value!r} must list consecutive scores; write separate "
                "rules for scores that are not next to each other"
            )
    else:
        raise RFMError(f"{where}: {key} must be a score, a range 'lo-hi' or a list; got {value!r}")
    _check_range(where, key, low, high, bins)
    return low, high


def _check_range(where: str, key: str, low: int, high: int, bins: int) -> None:
    if key not in SCORE_NAMES:
        raise RFMError(f"{where}: unknown score {key!r}; expected one of R, F, M")
    if low > high:
        raise RFMError(f"{where}: {key} range {low}-{high} is empty")
    if low < 1 or high > bins:
        raise RFMError(
            f"{where}: {key} range {low}-{high} is outside the scores 1..{bins} (bins={bins})"
        )


def assign_segments(rules: Sequence[SegmentRule], scores: dict[str, np.ndarray]) -> pa.Array:
    """The segment of each customer (first matching rule, else "Other") as a dictionary array."""
    names = [rule.name for rule in rules] + [OTHER]
    n = scores["R"].shape[0]
    codes = np.full(n, len(rules), dtype=np.int8 if len(rules) < 127 else np.int32)
    unassigned = np.ones(n, dtype=bool)
    for code, rule in enumerate(rules):
        hit = unassigned & rule.matches(scores)
        codes[hit] = code
        unassigned &= ~hit
    return pa.DictionaryArray.from_arrays(from_numpy(codes), from_strings(names))
