"""Full-text search over findings: SQLite FTS5 (porter stemming, bm25), PostgreSQL tsvector on PostgreSQL.

Agents type free text, so the query is never passed through as FTS syntax: it is split into words,
each word becomes a quoted prefix term, and all terms must match (falling back to any term when
that finds nothing). Quotes, ``NEAR``, ``*`` or a stray ``"`` cannot break or widen the query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

_WORD_RE = re.compile(r"\w+", re.UNICODE)
MAX_TERMS = 16


@dataclass(frozen=True)
class Hit:
    finding_id: int
    rank: float
    snippet: str


def query_terms(query: str) -> list[str]:
    """The words of a free-text query, lowercased, deduplicated, at most ``MAX_TERMS``."""
    words = [w.lower() for w in _WORD_RE.findall(query)]
    return list(dict.fromkeys(words))[:MAX_TERMS]


class FullText:
    """The findings index for one engine; ``index`` runs inside the writer's transaction."""

    def __init__(self, engine: Engine) -> None:
        self.dialect = engine.dialect.name
        with engine.begin() as conn:
            if self.dialect == "sqlite":
                conn.execute(text(
                    "CREATE VIRTUAL TABLE IF NOT EXISTS hub_findings_fts USING fts5("
                    "title, body, tags, family, kind, tokenize='porter unicode61')"))
            elif self.dialect == "postgresql":
                conn.execute(text(
                    "CREATE INDEX IF NOT EXISTS ix_hub_findings_fts ON hub_findings USING GIN ("
                    "to_tsvector('english', title || ' ' || body || ' ' || coalesce(family, '') "
                    "|| ' ' || kind || ' ' || tags::text))"))

    def index(self, s: Session, finding_id: int, title: str, body: str, tags: list[str],
              family: str | None, kind: str) -> None:
        """Add a new finding to the index (findings are immutable, so there is no update)."""
        if self.dialect != "sqlite":
            return  # PostgreSQL indexes the expression itself
        s.execute(text("INSERT INTO hub_findings_fts(rowid, title, body, tags, family, kind) "
                       "VALUES (:id, :title, :body, :tags, :family, :kind)"),
                  {"id": finding_id, "title": title, "body": body, "tags": " ".join(tags),
                   "family": (family or "").replace("_", " ") + f" {family or ''}", "kind": kind})

    def search(self, s: Session, query: str, team: str | None, limit: int) -> list[Hit]:
        """Best matches first; ``team=None`` searches every team (admin)."""
        terms = query_terms(query)
        if not terms:
            return []
        hits = self._search(s, terms, team, limit, all_terms=True)
        if not hits and len(terms) > 1:
            hits = self._search(s, terms, team, limit, all_terms=False)
        return hits

    def _search(self, s: Session, terms: list[str], team: str | None, limit: int,
                all_terms: bool) -> list[Hit]:
        params: dict[str, object] = {"limit": limit, "team": team}
        team_sql = "" if team is None else "AND f.team = :team"
        if self.dialect == "sqlite":
            joiner = " AND " if all_terms else " OR "
            params["q"] = joiner.join(f'"{t}"*' for t in terms)
            rows = s.execute(text(
                "SELECT f.id, bm25(hub_findings_fts, 10.0, 1.0, 5.0, 2.0, 1.0) AS rank, "
                "snippet(hub_findings_fts, 1, '**', '**', ' … ', 16) AS snip "
                "FROM hub_findings_fts JOIN hub_findings f ON f.id = hub_findings_fts.rowid "
                f"WHERE hub_findings_fts MATCH :q {team_sql} ORDER BY rank LIMIT :limit"), params)
            return [Hit(int(r[0]), -float(r[1]), str(r[2] or "")) for r in rows]
        # PostgreSQL: prefix terms joined with & (all) or | (any)
        op = " & " if all_terms else " | "
        params["q"] = op.join(f"{t}:*" for t in terms)
        doc = ("to_tsvector('english', f.title || ' ' || f.body || ' ' || coalesce(f.family, '') "
               "|| ' ' || f.kind || ' ' || f.tags::text)")
        rows = s.execute(text(
            f"SELECT f.id, ts_rank({doc}, to_tsquery('english', :q)) AS rank, "
            "ts_headline('english', f.body, to_tsquery('english', :q), "
            "'StartSel=**, StopSel=**, MaxWords=20, MinWords=5') AS snip "
            f"FROM hub_findings f WHERE {doc} @@ to_tsquery('english', :q) {team_sql} "
            "ORDER BY rank DESC LIMIT :limit"), params)
        return [Hit(int(r[0]), float(r[1]), str(r[2] or "")) for r in rows]
