"""Reader for the WordNet 3.0 database that Debian's ``wordnet-base`` package installs.

Parses ``data.{noun,verb,adj,adv}`` (synsets with glosses), ``index.*`` (lemma → senses ordered by
frequency) and ``*.exc`` (irregular inflections), and finds a lemma in a sentence in any of its
inflected forms (WordNet's own "morphy" detachment rules). Pure Python, no NLTK.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from aar.w2s.testbeds.base import TestbedError

POS_FILES = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}
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
    """All synsets of one part of speech (``n``, ``v``, ``a``, ``r``; ``a`` includes satellites), by offset."""
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


# WordNet's morphy detachment rules: (suffix, replacement) per part of speech.
_DETACH: dict[str, tuple[tuple[str, str], ...]] = {
    "n": (
        ("s", ""),
        ("ses", "s"),
        ("xes", "x"),
        ("zes", "z"),
        ("ches", "ch"),
        ("shes", "sh"),
        ("men", "man"),
        ("ies", "y"),
    ),
    "v": (("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", "")),
    "a": (("er", ""), ("est", ""), ("er", "e"), ("est", "e")),
    "r": (),
}
_TOKEN = re.compile(r"[A-Za-z][A-Za-z'-]*")


def read_exceptions(pos: str, root: Path | None = None) -> dict[str, tuple[str, ...]]:
    """Irregular inflected form → base forms (``*.exc``), e.g. ``geese`` → ``goose``."""
    root = root or wordnet_dir()
    out: dict[str, tuple[str, ...]] = {}
    path = root / f"{POS_FILES[pos]}.exc"
    if path.exists():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split()
            if len(parts) >= 2:
                out[parts[0].replace("_", " ")] = tuple(p.replace("_", " ") for p in parts[1:])
    return out


def base_forms(token: str, pos: str, exceptions: dict[str, tuple[str, ...]]) -> set[str]:
    """The token itself plus every base form WordNet's morphology allows for it."""
    t = token.lower()
    forms = {t, *exceptions.get(t, ())}
    for suffix, repl in _DETACH[pos]:
        if t.endswith(suffix) and len(t) > len(suffix) + 1:
            forms.add(t[: -len(suffix)] + repl)
    return forms


def find_lemma(sentence: str, lemma: str, pos: str, exceptions: dict[str, tuple[str, ...]]) -> tuple[int, int] | None:
    """Character span of the first occurrence of ``lemma`` (any inflection of each word) in ``sentence``."""
    tokens = list(_TOKEN.finditer(sentence))
    parts = lemma.lower().split()
    for i in range(len(tokens) - len(parts) + 1):
        window = tokens[i : i + len(parts)]
        if all(
            p == m.group().lower() or p in base_forms(m.group(), pos, exceptions)
            for p, m in zip(parts, window, strict=True)
        ):
            return window[0].start(), window[-1].end()
    return None
