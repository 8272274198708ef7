"""Built-in offline testbeds from WordNet 3.0 (Debian ``wordnet-base``): word-sense choice and verification.

Each item shows a sentence from a WordNet gloss example with the target word marked (``*bank*``) and
asks which definition fits the word as used there. ``wordsense`` (pairwise): A/B = the true sense's
definition vs. another sense of the same word. ``wordsense-verify`` (binary): one definition, either
the word's true sense in this sentence or a definition of another word's sense.

Construction (every random choice draws from the testbed's secret salt, so re-running this code
without the salt reproduces neither the items kept, the distractors, the A/B order nor the splits):
- supply: every gloss example of every synset, matched to one of the synset's lemmas in any inflected
  form (WordNet's ``*.exc`` lists and morphy rules), one item per sentence; ID = nouns, verbs and
  adverbs, OOD = adjectives;
- pairwise: one distractor per item, another sense of the same word, chosen so that "the longer
  definition is correct" and "the more frequent sense (lower WordNet sense number) is correct" each
  hold for exactly half of the items (re-balanced after filtering); then adversarial filtering:
  22% (ID) / 20% (OOD) of the items are removed, drawn from those the strong encoder's (MPNet)
  sentence–definition cosine gets right, so the strong model's zero-shot rule leaves room; on OOD an
  item the weak encoder's cosine gets wrong is 1.4 times as likely to go, which keeps the weak
  supervisor above chance off its training distribution;
- binary: half the items (balanced within each split and difficulty level) are flagged false; a
  false item shows the true definition of another false item of the same part of speech (ID and OOD
  pooled separately), each used once and never in its own item, so how often a definition text
  appears does not depend on the label and the definition alone tells nothing. The donor is matched
  to the true definition in what a verifier could use without the task: of the 10 definitions whose
  MiniLM similarity to the sentence (raw cosine, and cosine minus the definition's mean cosine to all
  sentences) is closest to the true definition's, one of the 3 closest in length. The word's own
  senses and near-copies of the true definition (MiniLM cosine > 0.8) are excluded; no adversarial
  filter. The verifier has to tell whether the definition is about the marked word as used here;
- splits are grouped by word: no word appears in two splits; the small ``weak_train`` split trains
  the weak model on the trusted side and is never published, only the weak model's outputs are;
- A/B order (or True/False) is balanced within every difficulty level (difficulty = how many senses
  the word has).
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from aar.w2s.models.cache import ArrayCache
from aar.w2s.models.encoder import EncoderSpec, embed_texts
from aar.w2s.testbeds.base import Format, Item, Split, Testbed, salted_seed
from aar.w2s.testbeds.wordnet import find_lemma, read_exceptions, read_index, read_synsets, wordnet_dir

ID_POS: tuple[str, ...] = ("n", "v", "r")
OOD_POS: tuple[str, ...] = ("a",)
SIZES = {"test_id": 6600, "weak_train": 600}  # strong_train takes the rest of the ID pool (about 8,300)
VERIFY_SIZES = {"test_id": 8000, "weak_train": 2000}  # binary: no filter, strong_train about 10,900
OOD_SIZE = 8500
DROP = {"id": 0.22, "ood": 0.20}
WEAK_BIAS = {"id": 0.0, "ood": 0.4}
_WORD = re.compile(r"[a-z][a-z \-']*")


@dataclass(frozen=True)
class Candidate:
    """A word in a marked sentence with its true sense and every other sense of the word."""

    pos: str
    word: str
    sense: str
    context: str
    true_def: str
    rank: int
    others: tuple[tuple[str, int], ...]  # (definition, sense rank)
    distractor: str = ""
    distractor_rank: int = -1

    @property
    def n_senses(self) -> int:
        return len(self.others) + 1


def collect_candidates(pos: str, root: Path | None = None) -> list[Candidate]:
    """Every usable (sentence, word, sense) of one part of speech; deterministic, one per sentence."""
    synsets, index, exceptions = read_synsets(pos, root), read_index(pos, root), read_exceptions(pos, root)
    out: list[Candidate] = []
    seen: set[str] = set()
    for offset in sorted(synsets):
        synset = synsets[offset]
        for example in synset.examples:
            if example in seen or "*" in example:
                continue
            for lemma in synset.lemmas:
                word = lemma.lower()
                senses = index.get(word, [])
                if len(senses) < 2 or offset not in senses or not _WORD.fullmatch(word):
                    continue
                span = find_lemma(example, word, pos, exceptions)
                others = tuple(
                    (synsets[o].definition, senses.index(o))
                    for o in senses
                    if o != offset and synsets[o].definition != synset.definition
                )
                if span is None or not others:
                    continue
                seen.add(example)
                a, b = span
                marked = f"{example[:a]}*{example[a:b]}*{example[b:]}"
                out.append(Candidate(pos, word, offset, marked, synset.definition, senses.index(offset), others))
                break
    return out


def choose_distractors(cands: Sequence[Candidate], rng: np.random.Generator) -> list[Candidate]:
    """Pick one distractor per candidate aiming at a random (longer?, more frequent?) target pattern."""
    want_longer = rng.permutation(len(cands)) % 2 == 0
    want_frequent = rng.permutation(len(cands)) % 2 == 0
    out = []
    for c, longer, frequent in zip(cands, want_longer, want_frequent, strict=True):
        options = [(d, r) for d, r in c.others if len(d) != len(c.true_def)]
        if not options:
            continue
        scored = [
            (((len(c.true_def) > len(d)) == longer) * 2 + ((c.rank < r) == frequent), i)
            for i, (d, r) in enumerate(options)
        ]
        best = max(s for s, _ in scored)
        picks = [i for s, i in scored if s == best]
        d, r = options[picks[int(rng.integers(len(picks)))]]
        out.append(replace(c, distractor=d, distractor_rank=r))
    return out


def balance_priors(cands: Sequence[Candidate], rng: np.random.Generator) -> list[Candidate]:
    """Subsample so "longer is correct" and "more frequent sense is correct" each hold for exactly half."""
    cells: dict[tuple[bool, bool], list[Candidate]] = defaultdict(list)
    for c in cands:
        cells[(len(c.true_def) > len(c.distractor), c.rank < c.distractor_rank)].append(c)
    keep: list[Candidate] = []
    for x, y in (((True, True), (False, False)), ((True, False), (False, True))):
        k = min(len(cells[x]), len(cells[y]))
        for key in (x, y):
            group = cells[key]
            keep += [group[i] for i in sorted(rng.permutation(len(group))[:k])]
    return keep


def cosine_rule_correct(cands: Sequence[Candidate], spec: EncoderSpec, cache: ArrayCache | None) -> np.ndarray:
    """Whether ``spec``'s sentence–definition cosine prefers the true definition, per candidate."""
    ctx = embed_texts(spec, [c.context for c in cands], cache)
    right = (ctx * embed_texts(spec, [c.true_def for c in cands], cache)).sum(1)
    wrong = (ctx * embed_texts(spec, [c.distractor for c in cands], cache)).sum(1)
    return right > wrong


def adversarial_filter(
    cands: Sequence[Candidate],
    rng: np.random.Generator,
    cache: ArrayCache | None,
    encoder: str,
    rate: float,
    weak_bias: float = 0.0,
) -> list[Candidate]:
    """Drop ``rate`` of all candidates, drawn from those the strong ``encoder``'s cosine rule gets right.

    With ``weak_bias`` > 0, a candidate the weak encoder's cosine rule (MiniLM, first layer) gets
    wrong is ``1 + weak_bias`` times as likely to be dropped: the filter removes what only the strong
    model's zero-shot knowledge solves, and keeps the weak supervisor above chance.
    """
    strong_right = cosine_rule_correct(cands, EncoderSpec(name=encoder), cache)
    correct = np.flatnonzero(strong_right)
    n_drop = min(len(correct), int(round(rate * len(cands))))
    weights = np.ones(len(correct))
    if weak_bias:
        weak_right = cosine_rule_correct(cands, EncoderSpec(name="minilm", layers=1), cache)
        weights += weak_bias * ~weak_right[correct]
    drop = set(rng.choice(correct, size=n_drop, replace=False, p=weights / weights.sum()).tolist())
    return [c for i, c in enumerate(cands) if i not in drop]


MATCH_WINDOW, MATCH_PICK, NEAR_COPY = 10, 3, 0.8
MATCH_ENCODER = "minilm"  # an EncoderSpec is made at use, so it takes the runtime chosen then


def _match_distance(ctx: np.ndarray, true: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """For given rows: the distance of every group definition from the row's true definition, in
    similarity to the row's sentence (``ctx`` and ``true``: the group's sentence and true-definition
    embeddings).

    Two similarities, each scaled by its spread over true pairs: the raw cosine, and the cosine minus
    the definition's mean cosine to the group's sentences (a "hub" definition is close to every
    sentence; matching only raw cosine would let a verifier flag false candidates by their hubness).
    """
    hub = true @ ctx.mean(axis=0)
    own = (ctx * true).sum(1)
    raw_sd, centred_sd = max(float(own.std()), 1e-6), max(float((own - hub).std()), 1e-6)

    def distance(rows: np.ndarray) -> np.ndarray:
        raw = ctx[rows] @ true.T
        return np.abs(raw - own[rows, None]) / raw_sd + np.abs((raw - hub) - (own - hub)[rows, None]) / centred_sd

    return distance


def pair_negatives(
    cands: Sequence[Candidate], flags: np.ndarray, rng: np.random.Generator, cache: ArrayCache | None
) -> tuple[list[Candidate], np.ndarray]:
    """Binary: give each candidate flagged false the true definition of another flagged-false candidate.

    Each flagged-false candidate's true definition is shown at most once, as another item's false
    candidate, and never in its own item; so how often a definition text appears does not depend on
    the labels, and nothing in a definition alone tells true from false. The pick, per part of speech
    and in a salted order: of the ``MATCH_WINDOW`` unused definitions closest to the true definition
    in similarity to the sentence (``_match_distance``), one of the ``MATCH_PICK`` closest in length;
    the word's own senses and near-copies of the true definition (MiniLM cosine > ``NEAR_COPY``) are
    skipped. Returns the candidates (false ones with their distractor) and which ones were matched.
    """
    out = list(cands)
    matched = np.ones(len(cands), dtype=bool)
    match = EncoderSpec(name=MATCH_ENCODER)
    for pos in sorted({c.pos for c in cands}):
        neg = [i for i, c in enumerate(cands) if c.pos == pos and flags[i] == 0]
        if not neg:
            continue
        group = [cands[i] for i in neg]
        ctx = embed_texts(match, [c.context for c in group], cache)
        true = embed_texts(match, [c.true_def for c in group], cache)
        lengths = np.array([len(c.true_def) for c in group])
        used = np.zeros(len(neg), dtype=bool)
        distance_from = _match_distance(ctx, true)
        order = rng.permutation(len(neg))
        for start in range(0, len(order), 512):
            rows = order[start : start + 512]
            distance = distance_from(rows)
            for k, row in enumerate(rows):
                c = group[row]
                own = {c.true_def, *(d for d, _ in c.others)}
                allowed = (
                    j
                    for j in np.argsort(distance[k], kind="stable")
                    if not used[j] and group[j].true_def not in own and float(true[j] @ true[row]) <= NEAR_COPY
                )
                window = list(islice(allowed, MATCH_WINDOW))
                if not window:
                    matched[neg[row]] = False
                    continue
                by_length = sorted(window, key=lambda j: (abs(int(lengths[j]) - len(c.true_def)), j))[:MATCH_PICK]
                pick = by_length[int(rng.integers(len(by_length)))]
                used[pick] = True
                out[neg[row]] = replace(c, distractor=group[pick].true_def, distractor_rank=group[pick].rank)
    return out, matched


def level_flags(cands: Sequence[Candidate], rng: np.random.Generator) -> tuple[list[Candidate], np.ndarray]:
    """The candidates ordered by difficulty level, with 0/1 flags balanced within every level."""
    by_level: dict[str, list[Candidate]] = defaultdict(list)
    for c in cands:
        by_level[_difficulty(c.n_senses)].append(c)
    ordered = [c for level in sorted(by_level) for c in by_level[level]]
    parts = [rng.permutation(len(by_level[level])) % 2 for level in sorted(by_level)]
    return ordered, (np.concatenate(parts).astype(int) if parts else np.zeros(0, dtype=int))


def _difficulty(n_senses: int) -> str:
    return "2-3 senses" if n_senses <= 3 else ("4-7 senses" if n_senses <= 7 else "8+ senses")


FREQUENT_RULE = "more frequent WordNet sense is correct (needs the label source)"


def to_split(
    cands: Sequence[Candidate],
    flags: np.ndarray,
    fmt: Format,
    rng: np.random.Generator,
    salt: str,
    matched: np.ndarray | None = None,
) -> tuple[Split, float]:
    """Items with salted ids and the given labels (``flags``), in a salted order.

    ``matched`` (binary) marks false items left without a false candidate: they are dropped, with as
    many true ones, so the labels stay balanced.

    Also returns the accuracy of the sense-order rule (pairwise: prefer the lower sense number;
    binary: "true" iff the shown sense is the word's first), symmetrised to max(acc, 1 - acc).
    """
    if matched is not None and not matched.all():
        keep = matched.copy()
        positives = np.flatnonzero(flags == 1)
        n_drop = min(int((~matched).sum()), len(positives))
        keep[rng.choice(positives, size=n_drop, replace=False)] = False
        cands, flags = [c for c, k in zip(cands, keep, strict=True) if k], flags[keep]
    items, labels, levels, rule = [], [], [], []
    for c, y in zip(cands, flags, strict=True):
        uid = "ws-" + hashlib.sha256(f"{salt}|{c.pos}|{c.sense}|{c.context}".encode()).hexdigest()[:12]
        if fmt == "pairwise":
            a, b = (c.distractor, c.true_def) if y == 1 else (c.true_def, c.distractor)
            items.append(Item(uid, c.context, a, b))
            rule.append(c.rank < c.distractor_rank)
        else:
            items.append(Item(uid, c.context, c.true_def if y == 1 else c.distractor))
            rule.append((c.rank if y == 1 else c.distractor_rank) == 0)
        labels.append(int(y))
        levels.append(_difficulty(c.n_senses))
    order = rng.permutation(len(items))
    split = Split([items[i] for i in order], np.array(labels)[order], [levels[i] for i in order])
    hits = np.array(rule, dtype=float) if fmt == "pairwise" else (np.array(rule) == np.array(labels)).astype(float)
    acc = float(hits.mean()) if len(hits) else 0.5
    return split, max(acc, 1.0 - acc)


def split_by_word(
    cands: Sequence[Candidate], sizes: dict[str, int], rest: str | None, rng: np.random.Generator
) -> dict[str, list[Candidate]]:
    """Deal whole words, in a salted order, to each split until it reaches its size; ``rest`` gets the remainder."""
    by_word: dict[str, list[Candidate]] = defaultdict(list)
    for c in cands:
        by_word[c.word].append(c)  # a word is one unit across parts of speech ("act" the noun and the verb)
    words = sorted(by_word)
    order = [words[i] for i in rng.permutation(len(words))]
    out: dict[str, list[Candidate]] = {}
    pos = 0
    for name, size in sizes.items():
        out[name] = []
        while pos < len(order) and len(out[name]) < size:
            out[name] += by_word[order[pos]]
            pos += 1
    if rest:
        out[rest] = [c for word in order[pos:] for c in by_word[word]]
    return out


def _binary_splits(
    assigned: dict[str, list[Candidate]], rng: np.random.Generator, salt: str, cache: ArrayCache | None
) -> dict[str, tuple[Split, float]]:
    """Flag each split's candidates (balanced per level), pair false candidates within ID and within OOD."""
    flagged = {s: level_flags(cands, rng) for s, cands in assigned.items()}
    paired: dict[str, tuple[list[Candidate], np.ndarray, np.ndarray]] = {}
    for names in ([s for s in flagged if s != "test_ood"], [s for s in flagged if s == "test_ood"]):
        pooled = [c for s in names for c in flagged[s][0]]
        flags = np.concatenate([flagged[s][1] for s in names]) if names else np.zeros(0, dtype=int)
        with_negatives, matched = pair_negatives(pooled, flags, rng, cache)
        start = 0
        for s in names:
            n = len(flagged[s][0])
            paired[s] = (with_negatives[start : start + n], flagged[s][1], matched[start : start + n])
            start += n
    return {s: to_split(c, f, "binary", rng, salt, m) for s, (c, f, m) in paired.items()}


def _as_items(cands: Iterable[Candidate]) -> list[Item]:
    """Candidates as unlabelled items (sentence, true definition, distractor if chosen), for ``warm``."""
    return [Item("", c.context, c.true_def, c.distractor or None) for c in cands]


def salted_rng(salt: str, purpose: str) -> np.random.Generator:
    """A generator seeded by the secret salt and a purpose string (independent streams per purpose)."""
    return np.random.default_rng(salted_seed(f"{salt}|{purpose}"))


def build_wordsense(
    fmt: Format,
    salt: str,
    cache_dir: Path | None = None,
    name: str | None = None,
    max_cases: int | None = None,
    filter_encoder: str = "mpnet",
    drop: dict[str, float] | None = None,
    sizes: dict[str, int] | None = None,
    ood_size: int = OOD_SIZE,
    warm: Callable[[list[Item]], object] | None = None,
) -> Testbed:
    """Build the word-sense testbed in ``fmt`` (pairwise choice or binary verification).

    ``salt`` is the testbed's secret: every random choice draws from it. Pairwise only:
    ``filter_encoder`` is the strong encoder whose zero-shot cosine rule the adversarial filter works
    against; ``drop`` the share of items it removes per group. ``max_cases`` caps the candidate pool
    per group (small builds for tests); ``sizes`` overrides the ``test_id`` / ``weak_train`` sizes.
    ``warm`` is given, before anything is embedded, every candidate the build will embed (pairwise:
    all, for the filter; binary: those dealt to a split), so the cold path runs as one job
    (``aar.w2s.models.warm``).
    """
    rates = {**DROP, **(drop or {})}
    cache = ArrayCache(cache_dir) if cache_dir else None
    root = wordnet_dir()
    rngs = {group: salted_rng(salt, f"pool-{group}") for group in ("id", "ood")}
    pools: dict[str, list[Candidate]] = {}
    for group, poses in (("id", ID_POS), ("ood", OOD_POS)):
        cands = [c for pos in poses for c in collect_candidates(pos, root)]
        if max_cases is not None:
            cands = [cands[i] for i in sorted(rngs[group].permutation(len(cands))[:max_cases])]
        # binary: false candidates are paired after the split (``_binary_splits``), with true definitions
        pools[group] = choose_distractors(cands, rngs[group]) if fmt == "pairwise" else cands
    if fmt == "pairwise":
        if warm is not None:  # the filter needs the strong encoder on every candidate
            warm(_as_items(c for cands in pools.values() for c in cands))
        for group, cands in pools.items():
            kept = adversarial_filter(cands, rngs[group], cache, filter_encoder, rates[group], WEAK_BIAS[group])
            pools[group] = balance_priors(kept, rngs[group])
    rng = salted_rng(salt, "splits")
    n_id = len(pools["id"])
    full_sizes = SIZES if fmt == "pairwise" else VERIFY_SIZES
    want = sizes or (full_sizes if max_cases is None else {"test_id": int(0.3 * n_id), "weak_train": int(0.15 * n_id)})
    assigned = split_by_word(pools["id"], want, "strong_train", rng)
    assigned["test_ood"] = split_by_word(pools["ood"], {"test_ood": ood_size}, None, rng)["test_ood"]
    if fmt == "binary" and warm is not None:  # only what the splits use; distractors are true definitions
        warm(_as_items(c for cands in assigned.values() for c in cands))
    if fmt == "pairwise":
        built = {s: to_split(*level_flags(cands, rng), fmt, rng, salt) for s, cands in assigned.items()}
    else:
        built = _binary_splits(assigned, rng, salt, cache)
    meta: dict[str, Any] = {
        "source": "builtin",
        "description": "WordNet word-sense " + ("choice (A/B)" if fmt == "pairwise" else "verification (True/False)"),
        "construction": __doc__ + (f"\nThis build's filter removes {rates['id']:.0%} (ID) / {rates['ood']:.0%} (OOD) "
                                   "instead." if fmt == "pairwise" and rates != DROP else ""),
        "data": "WordNet 3.0 (Princeton University), Debian package wordnet-base",
    }
    if fmt == "pairwise":
        meta["adversarial_filter"] = {"encoder": filter_encoder, "drop": rates, "weak_bias": WEAK_BIAS}
    else:
        meta["negatives"] = {
            "matched_on": "minilm cosine (raw and hub-centred), length",
            "window": MATCH_WINDOW,
            "pick": MATCH_PICK,
        }
    return Testbed(
        name or ("wordsense" if fmt == "pairwise" else "wordsense-verify"),
        fmt,
        {s: split for s, (split, _) in built.items()},
        meta,
        checks={FREQUENT_RULE: {s: acc for s, (_, acc) in built.items()}},
    )
