"""Attacks on the dashboard's doors, each beside a control that works: no session, a worker token, CSRF
missing or wrong, a cross-origin POST, cookie flags, CSP, hostile Markdown and transcript text rendered
inert, path traversal in team / worker names, and agent-planted symlinks that are not followed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dashkit import admin_token, dash_client, fake_team, home, login, trajectory

from aar.auth import TokenStore
from aar.dashboard.render import markdown
from aar.db import make_engine

HOSTILE = ("<script>alert(1)</script> <img src=x onerror=alert(2)> [a](javascript:alert(3)) "
           "[b](JaVaScRiPt&#58;alert(4)) [c](data:text/html;base64,PHNjcmlwdD4=) <javascript:alert(5)> "
           "[d](vbscript:x) [e](//evil.example/x) ![f](http://evil.example/t.png) [ok](https://example.org/p)")


@pytest.fixture()
def setup(tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = home(tmp_path)
    state = fake_team(settings, "t1")
    return settings, state, dash_client(settings)


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    from html.parser import HTMLParser

    found: list[tuple[str, dict[str, str | None]]] = []

    class P(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.append((tag, dict(attrs)))

    P().feed(html)
    return found


def test_markdown_is_inert() -> None:
    html = str(markdown(HOSTILE))
    tags = elements(html)
    assert {t for t, _ in tags} <= {"p", "a"}  # no script, img, svg: they stay text
    assert all(not k.startswith("on") for _, attrs in tags for k in attrs)
    assert [a["href"] for t, a in tags if t == "a"] == ["http://evil.example/t.png", "https://example.org/p"]
    assert "&lt;script&gt;" in html and "noopener" in html


def test_every_page_needs_an_admin_session(setup) -> None:  # type: ignore[no-untyped-def]
    settings, state, client = setup
    w = next(iter(state.workers))
    for url in ("/", "/teams/t1", "/forum", "/testbeds", "/search?q=x", f"/teams/t1/workers/{w}"):
        r = client.get(url, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), url
    assert client.get("/api/version", follow_redirects=False).status_code == 401
    client.cookies.set("aar_dash", "forged-session-id")
    assert client.get("/", follow_redirects=False).status_code == 303  # an unknown session id
    client.cookies.clear()
    assert client.post("/teams", data={"csrf": "x"}).status_code == 401
    worker = TokenStore(make_engine(settings.sqlite_url("auth"))).create("t1-w01", "t1")
    r = client.post("/login", data={"token": worker}, follow_redirects=False)
    assert r.status_code == 401 and "aar_dash" not in r.cookies  # a worker token is not enough
    r = client.post("/login", data={"token": "aar_guess"}, follow_redirects=False)
    assert r.status_code == 401
    token = admin_token(settings)
    r = client.post("/login", data={"token": token, "next": "//evil.example"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"  # no open redirect
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    assert client.get("/").status_code == 200  # control: the session works
    csp = client.get("/").headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("style-src")[0]
    TokenStore(make_engine(settings.sqlite_url("auth"))).revoke_worker("dash-admin")
    assert client.get("/", follow_redirects=False).status_code == 303  # revoked: the session ends at once


def test_writes_need_the_csrf_token_and_same_origin(setup) -> None:  # type: ignore[no-untyped-def]
    settings, state, client = setup
    csrf = login(client, admin_token(settings))
    stop = settings.runs_dir / "t1" / "STOP"
    assert client.post("/teams/t1/stop", data={}).status_code == 403
    assert client.post("/teams/t1/stop", data={"csrf": "wrong" + csrf[5:]}).status_code == 403
    assert client.post("/teams/t1/stop", data={"csrf": csrf},
                       headers={"Origin": "http://evil.example"}).status_code == 403
    assert not stop.exists()
    r = client.post("/teams/t1/stop", data={"csrf": csrf}, headers={"Origin": "http://127.0.0.1"},
                    follow_redirects=False)
    assert r.status_code == 303 and stop.exists()  # control: the right token stops the team
    assert client.post("/logout", data={}).status_code == 403
    assert client.post("/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 303


def test_names_from_urls_are_checked_before_the_disk(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings, state, client = setup
    login(client, admin_token(settings))
    outside = tmp_path / "outside"
    fake_team(home(outside), "secret")
    os.symlink(outside / "runs" / "secret", settings.runs_dir / "linked")  # a team folder that is a link
    w = next(iter(state.workers))
    for url in ("/teams/%2e%2e", "/teams/.%2e", "/teams/..%2f..%2fetc", "/teams/linked", "/teams/nope",
                f"/teams/t1/workers/..%2f{w}", "/teams/t1/workers/t1-w99", "/teams/t1/report/..%2fteam.png",
                "/teams/t1/report/secret.png", f"/api/teams/t1/workers/{w}/line?offset=1",
                "/snapshots/../../etc/passwd", "/snapshots/" + "g" * 64, "/forum/0"):
        r = client.get(url)
        assert r.status_code in (404, 422), (url, r.status_code)
    assert client.get("/teams/t1").status_code == 200  # control


def test_agent_symlinks_are_not_followed_and_text_is_escaped(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings, state, client = setup
    login(client, admin_token(settings))
    w1, w2 = list(state.workers)
    secret = tmp_path / "host-secret.txt"
    secret.write_text("HOST SECRET")
    ws = settings.runs_dir / "t1" / "workers"
    os.symlink(secret, ws / w1 / "workspace" / "NOTEBOOK.md")  # planted by the agent
    (ws / w2 / "workspace" / "NOTEBOOK.md").write_text("# notes\n" + HOSTILE)
    tr = trajectory(settings, "t1", w2)
    tr.append("tool_result", name="shell", ok=True, result=HOSTILE)
    tr.append("message", role="assistant", text="<svg onload=alert(1)>", tokens=10)
    assert "HOST SECRET" not in client.get(f"/teams/t1/workers/{w1}").text
    page = client.get(f"/teams/t1/workers/{w2}").text
    assert "NOTEBOOK.md" in page  # control: a regular notebook is shown
    for bad in ("<script>alert", "<img src=x", "<svg onload", 'href="javascript', 'href="data:'):
        assert bad not in page, bad
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    (settings.runs_dir / "t1" / "report").mkdir()
    os.symlink(secret, settings.runs_dir / "t1" / "report" / "pgr.png")
    assert client.get("/teams/t1/report/pgr.png").status_code == 404
