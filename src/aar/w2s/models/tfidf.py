"""TF-IDF + logistic regression: a classic weak model with no pretrained knowledge.

Features per (prompt, answer): the TF-IDF vector of the answer, its element-wise product with the
prompt's vector (word overlap), and their cosine. Vocabulary is fitted on the training items.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from aar.w2s.models.base import W2SModel
from aar.w2s.testbeds.base import Format, Item


class TfidfModel(W2SModel):
    """Sparse TF-IDF features with an L2-regularised logistic regression (scikit-learn)."""

    name = "tfidf"

    def __init__(self, fmt: Format, C: float = 1.0, max_features: int = 20000, ngram_max: int = 1) -> None:
        super().__init__(fmt)
        self.C, self.max_features, self.ngram_max = C, max_features, ngram_max
        self.vectorizer = None
        self.clf = None

    def _answer_features(self, prompts: Sequence[str], answers: Sequence[str]) -> sp.csr_matrix:
        assert self.vectorizer is not None
        p = self.vectorizer.transform(prompts)
        a = self.vectorizer.transform(answers)
        prod = p.multiply(a).tocsr()
        cos = np.asarray(prod.sum(axis=1))
        return sp.hstack([a, prod, sp.csr_matrix(cos)]).tocsr()

    def _features(self, items: Sequence[Item]) -> sp.csr_matrix:
        prompts = [it.prompt for it in items]
        fa = self._answer_features(prompts, [it.answer_a for it in items])
        if self.fmt == "binary":
            return fa
        return (self._answer_features(prompts, [it.answer_b or "" for it in items]) - fa).tocsr()

    def fit(self, items, targets, *, weights=None, loss="bce", seed=0):  # type: ignore[no-untyped-def]
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        if loss != "bce":
            raise NotImplementedError("the tfidf backend supports only the bce loss")
        texts = [it.prompt for it in items] + [it.answer_a for it in items] + [it.answer_b or "" for it in items]
        self.vectorizer = TfidfVectorizer(
            max_features=self.max_features, ngram_range=(1, self.ngram_max), sublinear_tf=True
        ).fit(texts)
        x = self._features(items)
        t = np.clip(np.asarray(targets, dtype=float), 0, 1)
        w = np.ones(len(t)) if weights is None else np.asarray(weights, dtype=float)
        if self.fmt == "pairwise":
            x, t, w = sp.vstack([x, -x]).tocsr(), np.concatenate([t, 1 - t]), np.concatenate([w, w])
        # Soft targets as two weighted copies of every row: label 1 with weight t, label 0 with 1 - t.
        xx = sp.vstack([x, x]).tocsr()
        yy = np.concatenate([np.ones(len(t)), np.zeros(len(t))])
        ww = np.concatenate([w * t, w * (1 - t)])
        keep = ww > 0
        self.clf = LogisticRegression(C=self.C, fit_intercept=self.fmt == "binary", max_iter=2000)
        self.clf.fit(xx[keep], yy[keep], sample_weight=ww[keep])
        return self

    def predict_proba(self, items: Sequence[Item]) -> np.ndarray:
        if self.clf is None:
            raise RuntimeError("tfidf model is not trained")
        return self.clf.predict_proba(self._features(items))[:, 1]
