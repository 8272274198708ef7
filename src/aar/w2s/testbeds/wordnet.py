"""Reader for the WordNet 3.0 database that Debian's ``wordnet-base`` package installs.

Parses ``data.{noun,verb,adj}`` (synsets with glosses) and ``index.*`` (lemma → senses ordered by
frequency). Pure Python, no NLTK.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from aar.w2s.testbeds.base import TestbedError

POS_FILES = {"n": "noun", "v": "verb", "a": "adj"}
SEARCH_DIRS = (os.environ.get("WNSEARCHDIR", ""), "/usr/share/wordnet", "/usr/local/share/wordnet")


@dataclass(frozen=True)
class Synset:
    offset: str
    pos: str
    lemmas: tuple[str, ...]
    definition: str
    examples: tuple[str, ...]


def wordnet_dir() -> Path:
    """The WordNet dictionary folder, or a clear error telling how to install it."""
    for d in SEARCH_DIRS:
        if d and (Path(d) / "data.noun").exists():
            return Path(d)
    raise TestbedError(
        "WordNet 3.0 not found (looked in /usr/share/wordnet and $WNSEARCHDIR); "
        "install it with `apt-get install wordnet-base` (scripts/setup.sh does)"
    )


_QUOTED = re.compile(r'"([^"]+)"')
_QUOTED_WITH_ATTRIBUTION = re.compile(r'"[^"]+"(\s*-+\s*[^;"]*)?')


def _parse_gloss(gloss: str) -> tuple[str, tuple[str, ...]]:
    examples = tuple(e.strip() for e in _QUOTED.findall(gloss))
    definition = _QUOTED_WITH_ATTRIBUTION.sub("", gloss)
    definition = re.sub(r"\s*;\s*(;\s*)*", "; ", definition).strip(" ;")
    return definition, examples


def read_synsets(pos: str, root: Path | None = None) -> dict[str, Synset]:
    """All synsets of one part of speech (``n``, ``v``, ``a``; ``a`` includes satellites), by offset."""
    root = root or wordnet_dir()
    synsets: dict[str, Synset] = {}
    with (root / f"data.{POS_FILES[pos]}").open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith("  "):
                continue
            head, _, gloss = line.partition(" | ")
            parts = head.split()
            offset, n_words = parts[0], int(parts[3], 16)
            lemmas = tuple(re.sub(r"\(.*\)$", "", parts[4 + 2 * i]).replace("_", " ") for i in range(n_words))
            definition, examples = _parse_gloss(gloss.strip())
            synsets[offset] = Synset(offset, pos, lemmas, definition, examples)
    return synsets


def read_index(pos: str, root: Path | None = None) -> dict[str, list[str]]:
    """Lemma → synset offsets (most frequent sense first) for one part of speech."""
    root = root or wordnet_dir()
    index: dict[str, list[str]] = {}
    with (root / f"index.{POS_FILES[pos]}").open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith("  "):
                continue
            parts = line.split()
            n_senses, n_ptr = int(parts[2]), int(parts[3])
            offsets = parts[4 + n_ptr + 2 :]
            assert len(offsets) == n_senses, line
            index[parts[0].replace("_", " ")] = offsets
    return index
