"""Strict parsing of a submission body: every malformed input is refused with a clear message.

Parsing is by hand rather than through a pydantic model because the rules are stricter than JSON
coercion allows: duplicate keys, ``NaN`` / ``Infinity`` tokens, booleans posing as numbers and numeric
strings are all refused, and the id-set error says how many ids are missing and how many are unknown.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from aar.evalserver.labels import TESTBED_NAME, TestbedLabels

FIELDS = {"testbed", "predictions", "seed", "note", "snapshot_id"}
SNAPSHOT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
MAX_NOTE = 4000
MAX_ID_CHARS = 256
NUMBER_TYPES = {float, int}


class Invalid(Exception):
    """A refused request: ``status`` is 400 (unreadable), 415 (content type) or 422 (invalid content)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Submission:
    """A well-formed submission (``predictions_vector`` checks its ids against the testbed)."""

    testbed: str
    predictions: dict[str, Any]
    seed: int | None = None
    note: str | None = None
    snapshot_id: str | None = None


class _Duplicate(ValueError):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise _Duplicate(dup)
    return out


def _no_constants(token: str) -> Any:
    raise Invalid(422, f"{token} is not a probability; values must be finite numbers in [0, 1]")


def _examples(items: list[str], k: int = 3) -> str:
    shown = ", ".join(repr(i[:40]) for i in items[:k])
    return f" (e.g. {shown})" if items else ""


def parse_submission(body: bytes, content_type: str | None) -> Submission:
    """Parse and check the shape of a submission body; raises ``Invalid``."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise Invalid(415, f"content type must be application/json, not {media or 'none'!r}")
    if not body.strip():
        raise Invalid(400, "empty body: send a JSON object with testbed and predictions")
    try:
        data = json.loads(body.decode("utf-8"), object_pairs_hook=_pairs, parse_constant=_no_constants)
    except UnicodeDecodeError:
        raise Invalid(400, "body is not UTF-8 text") from None
    except _Duplicate as exc:
        raise Invalid(422, f"duplicate key {str(exc)[:60]!r}: each item id may appear once") from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise Invalid(400, f"body is not valid JSON: {exc.msg} at {where}") from None
    except RecursionError:
        raise Invalid(400, "body is nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal over Python's 4,300-digit conversion limit
        raise Invalid(422, f"body holds a value that cannot be read as a number: {str(exc)[:120]}") from None
    if not isinstance(data, dict):
        raise Invalid(422, f"body must be a JSON object, not {type(data).__name__}")
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise Invalid(422, f"unknown field(s) {', '.join(repr(u[:40]) for u in unknown[:5])}; "
                           f"allowed: {', '.join(sorted(FIELDS))}")
    testbed = data.get("testbed")
    if not isinstance(testbed, str) or not TESTBED_NAME.match(testbed):
        raise Invalid(422, "testbed must be a testbed name (1-64 letters, digits, '.', '_' or '-')")
    preds = data.get("predictions")
    if not isinstance(preds, dict):
        raise Invalid(422, "predictions must be an object {item_id: probability of label 1}")
    if not preds:
        raise Invalid(422, "predictions is empty: give a probability for every test item")
    if not set(map(type, preds.values())) <= NUMBER_TYPES:  # bool, str, None, list, dict... are refused
        bad = [k for k, v in preds.items() if type(v) not in NUMBER_TYPES]
        raise Invalid(422, f"{len(bad)} prediction(s) are not numbers{_examples(bad)}; "
                           "values must be finite numbers in [0, 1]")
    if max(map(len, preds)) > MAX_ID_CHARS:
        long_ids = [k for k in preds if len(k) > MAX_ID_CHARS]
        raise Invalid(422, f"{len(long_ids)} item id(s) are longer than {MAX_ID_CHARS} characters")
    seed = data.get("seed")
    if seed is not None and (type(seed) is not int or not 0 <= seed < 2**63):
        raise Invalid(422, "seed must be a non-negative integer below 2**63, or null")
    note = data.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE):
        raise Invalid(422, f"note must be a string of at most {MAX_NOTE} characters, or null")
    snap = data.get("snapshot_id")
    if snap is not None and (not isinstance(snap, str) or not SNAPSHOT_ID.match(snap)):
        raise Invalid(422, "snapshot_id must be 1-128 characters of letters, digits, '_', '.', ':' or '-'")
    return Submission(testbed, preds, seed, note, snap)


def predictions_vector(sub: Submission, tl: TestbedLabels) -> np.ndarray:
    """Probabilities in the order of the testbed's published test items (``tl.submit_ids``); raises
    ``Invalid`` unless the ids are exactly those items."""
    preds, ids, n = sub.predictions, tl.submit_ids, tl.n_public
    if len(preds) != n or not all(i in preds for i in ids):
        known = set(ids)
        unknown = [k for k in preds if k not in known]
        missing = [i for i in ids if i not in preds]
        raise Invalid(422, f"predictions must cover exactly the {n} published test items of testbed {tl.name!r} "
                           f"(test_id and test_ood): {len(missing)} missing{_examples(missing)}, "
                           f"{len(unknown)} unknown{_examples(unknown)}")
    try:
        probs = np.fromiter(map(preds.__getitem__, ids), dtype=np.float64, count=n)
    except OverflowError:  # an integer too large for a float
        raise Invalid(422, "a prediction is outside [0, 1]: values must be finite numbers in [0, 1]") from None
    bad = ~(np.isfinite(probs) & (probs >= 0.0) & (probs <= 1.0))
    if bad.any():
        where = [ids[i] for i in np.flatnonzero(bad)[:3]]
        first = float(probs[np.flatnonzero(bad)[0]])
        shown = "a non-finite number" if not math.isfinite(first) else repr(first)
        raise Invalid(422, f"{int(bad.sum())} prediction(s) are outside [0, 1]{_examples(where)}: "
                           f"first is {shown}")
    return probs
