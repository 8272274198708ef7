"""Turning stored records into what templates show: safe Markdown, transcript entries, inline SVG plots.

Everything returned here is either plain text (the templates escape it) or HTML built only by
markdown-it with raw HTML off and a link allow-list (:func:`markdown`), or by :func:`svg_lines` from
numbers and escaped labels. Nothing an agent wrote reaches the page unescaped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from typing import Any

from markupsafe import Markup

from aar.dashboard.journal import Line

SCREEN_CHARS = 1500  # text longer than this is cut on screen ("show all" fetches the whole step)
_SAFE_LINK = re.compile(r"^(https?://|/(?!/)|\.{0,2}/|#|[^:/?#]*([/?#]|$))", re.IGNORECASE)
_md = None


def safe_link(url: str) -> bool:
    """Only http(s) and relative links (no ``javascript:``, ``data:``, ``vbscript:``, ``file:``, ``//host``)."""
    url = url.strip()
    if any(ord(c) < 0x20 or c == "\\" for c in url):
        return False
    return bool(_SAFE_LINK.match(url)) and not url.startswith("//")


def _parser() -> Any:
    global _md
    if _md is None:
        from markdown_it import MarkdownIt

        md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
        md.disable(["image", "html_block", "html_inline"])
        md.validateLink = safe_link  # type: ignore[method-assign]

        def link_open(renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
            tokens[idx].attrSet("rel", "nofollow noopener noreferrer")
            return str(renderer.renderToken(tokens, idx, options, env))

        md.add_render_rule("link_open", link_open)
        _md = md
    return _md


def markdown(text: str, limit: int = 200_000) -> Markup:
    """Agent Markdown as HTML: no raw HTML (shown as text), no images, links http(s)/relative only."""
    return Markup(_parser().render(text[:limit]))


def short(text: str, n: int = SCREEN_CHARS) -> tuple[str, bool]:
    """``text`` cut to ``n`` characters on screen, and whether it was cut."""
    return (text, False) if len(text) <= n else (text[:n], True)


def as_text(value: Any) -> str:
    """A stored value as readable text (strings as they are, anything else as indented JSON)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=1, ensure_ascii=False, default=str)


@dataclass
class Block:
    """A labelled piece of an entry's text (``folded``: hidden behind a ``<details>`` until opened)."""

    label: str
    text: str
    cut: bool = False
    folded: bool = True

    @property
    def preview(self) -> str:
        """The first line, short (shown beside a folded block's label)."""
        first = next((x.strip() for x in self.text.splitlines() if x.strip() not in ("", "{", "[")), "")
        return first[:140] + ("…" if len(first) > 140 else "")


@dataclass
class Entry:
    """One transcript line ready for the template."""

    offset: int
    kind: str
    t: datetime | None
    title: str
    session: int = 0
    css: str = ""
    blocks: list[Block] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)  # (label, href) built from validated ids
    search: str = ""


_SHA = re.compile(r"^[0-9a-f]{64}$")


def _pgr(released: Any) -> str:
    if isinstance(released, dict):
        parts = [f"{k} {v:.3f}" for k, v in released.items() if isinstance(v, int | float) and not isinstance(v, bool)]
        return ", ".join(parts) or "withheld"
    return "withheld" if released is None else str(released)


def entry(line: Line, team: str, full: bool = False) -> Entry:
    """The transcript entry of a journal line (``full``: no on-screen truncation)."""
    s = line.step
    if s is None:
        return Entry(line.offset, "bad", None, "unreadable line", css="error",
                     blocks=[Block("raw", line.raw, folded=False)])
    cap = 10**9 if full else SCREEN_CHARS

    def block(label: str, value: Any, folded: bool = True) -> Block:
        text, cut = short(as_text(value), cap)
        return Block(label, text, cut, folded)

    d = s.data
    e = Entry(line.offset, s.type, s.t, s.type.replace("_", " "), session=s.session, css=s.type)
    if s.type == "run_start":
        prior = d.get("prior") or {}
        restart = isinstance(prior, dict) and any(prior.get(k) for k in ("sessions", "submissions", "wall_s"))
        e.title = f"run started ({d.get('kind', '?')})" + (" — restart, resuming earlier usage" if restart else "")
        e.css = "run restart" if restart else "run"
        e.blocks.append(block("details", {k: v for k, v in d.items() if k != "kind"}))
    elif s.type == "run_end":
        e.title = f"run ended: {d.get('reason', '?')}"
        e.css = "run"
        e.blocks.append(block("usage", d.get("usage", {})))
    elif s.type in ("session_start", "session_end"):
        e.title = f"session {s.session} {'started' if s.type == 'session_start' else 'ended'}"
        if s.type == "session_end" and d.get("ok") is False:
            e.title += " (not ok" + (f": {d['stopped']}" if d.get("stopped") else "") + ")"
        e.css = "session"
    elif s.type == "message":
        role = str(d.get("role", "message"))
        e.title = role + (f" — {s.tokens} tokens" if s.tokens else "") + (f", ${s.cost_usd:.4f}" if s.cost_usd else "")
        text = d.get("text", d.get("content"))
        if text is not None:
            e.blocks.append(block("text", text, folded=False))
        rest = {k: v for k, v in d.items() if k not in ("role", "text", "content")}
        if rest:
            e.blocks.append(block("details", rest))
    elif s.type == "tool_call":
        e.title = f"tool call: {d.get('name', '?')}"
        e.blocks.append(block("input", d.get("arguments", {})))
    elif s.type == "tool_result":
        ok = d.get("ok", True)
        e.title = f"tool result: {d.get('name', '?')}" + ("" if ok else " (failed)")
        e.css = "tool_result" + ("" if ok else " error")
        out = d.get("result", d.get("error", {k: v for k, v in d.items() if k not in ("name", "ok")}))
        e.blocks.append(block("output", out))
        e.links += _result_links(str(d.get("name", "")), d.get("result"), team)
    elif s.type == "submission":
        e.title = f"submission {s.submission_id or ''}: released PGR {_pgr(d.get('released_pgr'))}"
        e.blocks.append(block("details", d))
        snap = d.get("snapshot_id")
        if isinstance(snap, str) and _SHA.match(snap):
            e.links.append(("snapshot", f"/snapshots/{snap}"))
    elif s.type == "error":
        e.title = "error"
        e.css = "error"
        e.blocks.append(block("error", d.get("error", d), folded=False))
    elif s.type == "detector":
        e.title = f"detector: {d.get('detector', '?')}"
        e.css = "detector"
        e.blocks.append(block("details", d))
    elif s.type == "budget_stop":
        e.title = f"budget reached: {d.get('reason', '')}"
        e.css = "run"
    else:  # decision and anything newer
        e.blocks.append(block("details", d, folded=len(as_text(d)) > 300))
    e.search = (e.title + " " + " ".join(b.text for b in e.blocks)).lower()[:20_000]
    return e


def _result_links(name: str, result: Any, team: str) -> list[tuple[str, str]]:
    """Links to the finding or snapshot a tool result names (ids checked: an int, a sha256)."""
    if not isinstance(result, dict):
        return []
    out = []
    fid, sid = result.get("id", result.get("finding_id")), result.get("snapshot_id", result.get("id"))
    if "finding" in name and isinstance(fid, int) and not isinstance(fid, bool) and fid > 0:
        out.append((f"finding #{fid}", f"/forum/{fid}"))
    if "snapshot" in name and isinstance(sid, str) and _SHA.match(sid):
        out.append((f"snapshot {sid[:12]}", f"/snapshots/{sid}"))
    return out


# ------------------------------------------------------------------ inline SVG line plots


@dataclass
class Series:
    label: str
    x: Sequence[float]
    y: Sequence[float | None]
    step: bool = False
    dots: bool = False


def svg_lines(series: Sequence[Series], title: str, xlabel: str, ylabel: str, width: int = 640,
              height: int = 300) -> Markup:
    """A small line chart as inline SVG (presentation attributes only: no style, no script)."""
    pts = [(x, y) for s in series for x, y in zip(s.x, s.y, strict=False) if y is not None]
    left, right, top, bottom = 56, 16, 28, 44
    out = [f'<svg class="plot" viewBox="0 0 {width} {height + 22 * ((len(series) + 2) // 3)}" role="img" '
           f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>',
           f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13">{escape(title)}</text>']
    if not pts:
        out.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="#777">no data yet</text></svg>')
        return Markup("".join(out))
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(min(p[1] for p in pts), 0.0), max(max(p[1] for p in pts), 0.0)
    x1, y1 = max(x1, x0 + 0.01), (y1 if y1 > y0 else y0 + 1.0)
    pad = (y1 - y0) * 0.05
    y0, y1 = y0 - pad, y1 + pad

    def X(v: float) -> float:
        return left + (v - x0) / (x1 - x0) * (width - left - right)

    def Y(v: float) -> float:
        return top + (y1 - v) / (y1 - y0) * (height - top - bottom)

    out.append(f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
               'fill="none" stroke="#bbb"/>')
    for k in range(5):
        yv, xv = y0 + (y1 - y0) * k / 4, x0 + (x1 - x0) * k / 4
        out.append(f'<text x="{left - 4}" y="{Y(yv) + 4:.1f}" text-anchor="end" font-size="10">{yv:.2f}</text>')
        out.append(f'<text x="{X(xv):.1f}" y="{height - bottom + 14}" text-anchor="middle" font-size="10">'
                   f'{xv:.3g}</text>')
    if y0 < 0 < y1:
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{Y(0):.1f}" y2="{Y(0):.1f}" stroke="#ddd"/>')
    out.append(f'<text x="{width / 2}" y="{height - 8}" text-anchor="middle" font-size="11">{escape(xlabel)}</text>')
    out.append(f'<text x="12" y="{height / 2}" text-anchor="middle" font-size="11" '
               f'transform="rotate(-90 12 {height / 2})">{escape(ylabel)}</text>')
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#000"]
    for k, s in enumerate(series):
        c = colors[k % len(colors)]
        xy = [(X(x), Y(y)) for x, y in zip(s.x, s.y, strict=False) if y is not None]
        if not xy:
            continue
        if s.step:
            path = [xy[0]]
            for a, b in zip(xy, xy[1:], strict=False):
                path += [(b[0], a[1]), b]
            xy_line = path
        else:
            xy_line = xy
        if len(xy_line) > 1:
            d = " ".join(f"{a:.1f},{b:.1f}" for a, b in xy_line)
            out.append(f'<polyline fill="none" stroke="{c}" stroke-width="2" points="{d}"/>')
        if s.dots or len(xy) == 1:
            out += [f'<circle cx="{a:.1f}" cy="{b:.1f}" r="2.5" fill="{c}"/>' for a, b in xy]
        lx, ly = left + (k % 3) * ((width - left) / 3), height + 14 + 22 * (k // 3)
        out.append(f'<rect x="{lx:.0f}" y="{ly - 9}" width="12" height="4" fill="{c}"/>'
                   f'<text x="{lx + 16:.0f}" y="{ly - 4}" font-size="11">{escape(s.label[:40])}</text>')
    out.append("</svg>")
    return Markup("".join(out))
