"""Idea families: which of the 11 method families of the published study an idea belongs to.

Two classifiers behind one interface (:class:`FamilyClassifier`), each returning one
:class:`FamilyLabel` per description:

* :class:`OfflineClassifier` needs nothing but the set-up: the packaged MiniLM embeds the idea and
  the family descriptions below; the score of a family is the cosine to its centroid plus a small
  bonus per keyword of that family found in the text. The descriptions are written for the
  families, not fitted to the labelled set, so the accuracy on that set is a fair estimate.
* :class:`LlmClassifier` asks a chat model (any configured provider) and records the model and the
  prompt's hash with each label.

``load_labelled()`` is the shipped labelled set (88 descriptions, 8 per family, hard cases that mix
families marked), and :func:`evaluate` gives accuracy and the confusion matrix on it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from pydantic import BaseModel, Field

from aar.hub.models import METHOD_FAMILIES

if TYPE_CHECKING:
    from aar.w2s.models.encoder import EncoderSpec

#: What each family means: the offline classifier's centroids and the LLM classifier's prompt.
DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "self_training": (
        "The student is trained on its own predictions as pseudo-labels.",
        "Iterative relabelling: the strong model relabels the data and is retrained over several rounds.",
        "Bootstrapping from the model's own confident outputs on unlabelled or test inputs.",
    ),
    "ensemble": (
        "Several models, seeds or views are combined by averaging or voting.",
        "Bagging, model averaging, mixing the predictions of different models at test time.",
        "A committee of students whose outputs are merged into one prediction.",
    ),
    "distillation": (
        "The strong student imitates the weak teacher's labels or probabilities.",
        "Knowledge distillation with soft targets and a temperature from the supervisor.",
        "Naive weak-to-strong fine-tuning with cross-entropy on the teacher's labels.",
    ),
    "data_filtering": (
        "Training examples are selected or removed before training.",
        "Dropping noisy, low-confidence or disagreeing weak labels; keeping a clean subset.",
        "Deduplication and outlier removal of the training data.",
    ),
    "confidence_weighting": (
        "Each training example's loss is weighted by how reliable its label seems.",
        "Importance weights or sample weights from the teacher's confidence.",
        "Down-weighting uncertain labels instead of removing them.",
    ),
    "loss_function": (
        "A different training objective: robust losses, auxiliary terms, regularisers on the output.",
        "Auxiliary confidence loss, label smoothing, symmetric or generalised cross-entropy.",
        "Adding an entropy or margin term to the loss to resist label noise.",
    ),
    "unsupervised_elicitation": (
        "The strong model's knowledge is elicited without labels.",
        "Zero-shot prompting, consistency search, contrast-consistent probes, clustering of representations.",
        "Finding answers the model itself finds coherent and consistent, with no supervision.",
    ),
    "curriculum": (
        "The order or schedule in which training examples are presented is designed.",
        "Easy-to-hard training in stages; self-paced learning; annealing from confident to uncertain items.",
        "A schedule that changes what the student trains on as training proceeds.",
    ),
    "model_internal": (
        "The model's internal activations or layers are used directly.",
        "Linear probes on hidden layers, layer selection, steering vectors, attention features.",
        "Choosing which layers to read or fine-tune inside the network.",
    ),
    "evolutionary": (
        "Methods or hyper-parameters are searched by mutation and selection over a population.",
        "Genetic algorithms, evolutionary search, crossover of configurations across generations.",
        "Hill-climbing over recipes with a fitness score.",
    ),
    "other": (
        "Ordinary engineering changes: optimiser, learning rate, batch size, architecture of the head.",
        "Data augmentation, feature normalisation, calibration, hyper-parameter grid search.",
        "A change that fits none of the method families.",
    ),
}

#: Words that name a family outright (regular expressions, matched case-insensitively).
KEYWORDS: dict[str, tuple[str, ...]] = {
    "self_training": (r"pseudo-?label", r"self-?train", r"relabel", r"own (hard )?predictions", r"rounds?\b",
                      r"co-?training", r"noisy student"),
    "ensemble": (r"ensembl", r"bagging", r"\bvot(e|ing)", r"averag", r"combine", r"committee", r"stack"),
    "distillation": (r"distil", r"soft (labels|probabilities|targets)", r"imitat", r"vanilla", r"teacher's",
                     r"\bkl\b"),
    "data_filtering": (r"filter", r"\bdrop", r"remov", r"discard", r"subset", r"dedup", r"keep only", r"select"),
    "confidence_weighting": (r"weight", r"importance"),
    "loss_function": (r"\bloss\b", r"cross-?entropy", r"smoothing", r"logconf", r"objective", r"\bterm\b"),
    "unsupervised_elicitation": (r"zero-?shot", r"unsupervis", r"consisten", r"elicit", r"contrast", r"cluster",
                                 r"coheren", r"no (weak )?labels", r"without (any )?(labels|supervision)"),
    "curriculum": (r"curricul", r"easy", r"easiest", r"harder", r"stages?\b", r"schedul", r"self-paced", r"warm ?up",
                   r"order"),
    "model_internal": (r"layer", r"activation", r"probe", r"residual", r"attention", r"steer", r"hidden",
                       r"transformer block"),
    "evolutionary": (r"evol", r"genetic", r"mutat", r"crossover", r"population", r"generation", r"tournament",
                     r"hill-?climb"),
    "other": (r"optimi[sz]er", r"learning rate", r"batch size", r"augment", r"grid search", r"calibrat", r"epochs"),
}


class FamilyLabel(BaseModel):
    """One idea's family, the classifier's score for it, and how it was obtained."""

    family: str
    score: float
    classifier: str
    detail: dict[str, Any] = Field(default_factory=dict)


class FamilyClassifier(Protocol):
    """Classify idea descriptions into ``METHOD_FAMILIES`` (one label per description, same order)."""

    name: str

    def classify(self, texts: Sequence[str]) -> list[FamilyLabel]: ...


def keyword_hits(text: str) -> np.ndarray:
    """How many of each family's keywords occur in ``text`` (one count per family, METHOD_FAMILIES order)."""
    low = text.lower()
    return np.array([sum(bool(re.search(k, low)) for k in KEYWORDS[f]) for f in METHOD_FAMILIES], dtype=float)


def idea_encoder() -> EncoderSpec:
    """The encoder for idea texts (families, diversity): MiniLM in float32, as the classifier was
    calibrated (keyword weight, ``bench_families``); idea texts are few, so int8's speed is moot."""
    from aar.w2s.models.encoder import EncoderSpec

    return EncoderSpec(name="minilm", runtime="torch")


class OfflineClassifier:
    """MiniLM nearest centroid over :data:`DESCRIPTIONS`, plus ``keyword_weight`` per keyword hit."""

    name = "offline"

    def __init__(self, cache_dir: Path | None = None, keyword_weight: float = 0.08) -> None:
        from aar.w2s.models.cache import ArrayCache

        self.cache = ArrayCache(cache_dir) if cache_dir else None
        self.keyword_weight = keyword_weight
        self._centroids: np.ndarray | None = None

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        from aar.w2s.models.encoder import embed_texts

        return embed_texts(idea_encoder(), list(texts), self.cache)

    def centroids(self) -> np.ndarray:
        if self._centroids is None:
            rows = [self._embed(DESCRIPTIONS[f]).mean(0) for f in METHOD_FAMILIES]
            c = np.stack(rows)
            self._centroids = c / np.linalg.norm(c, axis=1, keepdims=True)
        return self._centroids

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """(texts x families) scores: cosine to each centroid plus the keyword bonus."""
        if not texts:
            return np.zeros((0, len(METHOD_FAMILIES)))
        sims = self._embed(texts) @ self.centroids().T
        return sims + self.keyword_weight * np.stack([keyword_hits(t) for t in texts])

    def classify(self, texts: Sequence[str]) -> list[FamilyLabel]:
        scores = self.scores(texts)
        return [FamilyLabel(family=METHOD_FAMILIES[int(row.argmax())], score=float(row.max()), classifier=self.name,
                            detail={"encoder": "minilm", "keyword_weight": self.keyword_weight})
                for row in scores]


def llm_prompt() -> str:
    """The LLM classifier's system prompt (its sha256 is recorded with every label)."""
    lines = ["You classify a research idea on weak-to-strong supervision into exactly one method family.",
             "Families:"]
    lines += [f"- {f}: {' '.join(DESCRIPTIONS[f])}" for f in METHOD_FAMILIES]
    lines += ["Pick the family of the idea's main mechanism. Answer with JSON only: "
              '{"family": "<one family name from the list>"}']
    return "\n".join(lines)


class LlmClassifier:
    """A chat model picks the family (one call per description); see :func:`llm_prompt`."""

    name = "llm"

    def __init__(self, provider: Any, max_tokens: int = 64) -> None:
        self.provider, self.max_tokens = provider, max_tokens
        self.system = llm_prompt()
        self.prompt_sha256 = hashlib.sha256(self.system.encode()).hexdigest()

    def classify(self, texts: Sequence[str]) -> list[FamilyLabel]:
        out = []
        for text in texts:
            turn = self.provider.complete(self.system, [{"role": "user", "content": f"Idea: {text}"}], [],
                                          max_tokens=self.max_tokens)
            family, error = parse_family(turn.text)
            detail = {"model": self.provider.model, "prompt_sha256": self.prompt_sha256,
                      "tokens": turn.input_tokens + turn.output_tokens}
            if error:
                detail["error"] = error
            out.append(FamilyLabel(family=family, score=0.0 if error else 1.0, classifier=self.name, detail=detail))
        return out


def parse_family(answer: str) -> tuple[str, str | None]:
    """The family in a model's answer (JSON, or a family name in the text); ``other`` and a reason if none."""
    match = re.search(r"\{.*\}", answer, re.S)
    if match:
        try:
            value = json.loads(match.group(0)).get("family")
        except (ValueError, AttributeError):
            value = None
        if value in METHOD_FAMILIES:
            return value, None
    named = [f for f in METHOD_FAMILIES if f in answer]
    if len(named) == 1:
        return named[0], None
    return "other", f"no single family in the answer: {answer[:120]!r}"


def load_labelled() -> list[dict[str, Any]]:
    """The shipped labelled set: ``{"text", "family", "hard"}`` per idea description."""
    raw = resources.files("aar.analysis").joinpath("data/idea_families.jsonl").read_text()
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


class ClassifierEval(BaseModel):
    """Accuracy of a classifier on a labelled set, overall and on the hard (mixed-family) cases."""

    classifier: str
    n: int
    accuracy: float
    accuracy_se: float
    hard_accuracy: float
    confusion: dict[str, dict[str, int]] = Field(description="true family -> predicted family -> count")


def evaluate(classifier: FamilyClassifier, items: Sequence[dict[str, Any]]) -> ClassifierEval:
    """Classify every labelled item and compare (accuracy with its binomial SE)."""
    labels = classifier.classify([it["text"] for it in items])
    right = np.array([lab.family == it["family"] for lab, it in zip(labels, items, strict=True)], dtype=float)
    hard = np.array([bool(it.get("hard")) for it in items])
    confusion: dict[str, dict[str, int]] = {f: {} for f in METHOD_FAMILIES}
    for lab, it in zip(labels, items, strict=True):
        row = confusion[it["family"]]
        row[lab.family] = row.get(lab.family, 0) + 1
    acc = float(right.mean()) if len(right) else 0.0
    return ClassifierEval(classifier=classifier.name, n=len(items), accuracy=acc,
                          accuracy_se=float(np.sqrt(acc * (1 - acc) / max(len(right), 1))),
                          hard_accuracy=float(right[hard].mean()) if hard.any() else 0.0, confusion=confusion)
