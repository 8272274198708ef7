"""The dashboard in a real browser (Playwright, headless /usr/bin/chromium) against live services: log in,
launch a small evolve team from the form, watch workers and a submission arrive live, read a transcript,
open a finding, see a plot, stop the team; and hostile agent text that stays inert in the browser."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from agentkit import Live, bwrap_or_skip
from dashkit import admin_token, fake_team, trajectory

from aar.dashboard.app import DashboardConfig, create_app
from aar.hub.client import HubClient
from aar.servicekit import serve_in_thread

CHROMIUM = Path("/usr/bin/chromium")
HOSTILE = ("# evil\n<script>window.__pwned = 1; alert('script')</script>\n"
           "<img src=x onerror=\"window.__pwned = 2; alert('img')\">\n"
           "[click me](javascript:alert('link')) [data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)\n"
           "<a href=\"javascript:alert('raw')\">raw link</a> <svg onload=alert('svg')></svg> [ok](https://example.org)")


#: What an injection would leave in the page (a page of ours has none of these).
PROBE = """() => ({
    pwned: window.__pwned || 0,
    inlineScripts: document.querySelectorAll('script:not([src])').length,
    imgs: [...document.querySelectorAll('img')].filter(i => !i.src.includes('/report/')).length,
    handlers: [...document.querySelectorAll('*')]
        .filter(e => [...e.attributes].some(a => a.name.startsWith('on'))).length,
    badLinks: [...document.querySelectorAll('a')]
        .filter(a => !/^(https?:|\\/|#|\\?)/.test(a.getAttribute('href') || '/')).length,
    svgs: [...document.querySelectorAll('svg')].filter(s => !s.classList.contains('plot')).length,
})"""


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium (scripts/setup.sh installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the dev extra installs playwright")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(20_000)
            yield page
        finally:
            browser.close()


@pytest.fixture(scope="module")
def dash(live: Live) -> Iterator[str]:
    app = create_app(live.settings, DashboardConfig(hub_url=live.hub_url, eval_url=live.eval_url, poll_ms=500))
    with serve_in_thread(app) as url:
        yield url


class Shots:
    """Screenshots in the test's folder, copied to ``$AAR_SCREENSHOTS`` when set."""

    def __init__(self, page: object, folder: Path) -> None:
        self.page, self.folder = page, folder

    def __call__(self, name: str) -> None:
        path = self.folder / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
        if os.environ.get("AAR_SCREENSHOTS"):
            target = Path(os.environ["AAR_SCREENSHOTS"])
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target / path.name)


def log_in(page: object, dash: str, token: str) -> None:
    page.goto(f"{dash}/")  # type: ignore[attr-defined]
    if "/login" not in page.url:  # type: ignore[attr-defined]
        return  # this browser page is logged in already
    page.fill("input[name=token]", token)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_selector("#launch-form")  # type: ignore[attr-defined]


def test_launch_watch_read_stop(live: Live, dash: str, browser_page: object, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    bwrap_or_skip()
    monkeypatch.setenv("AAR_HOME", str(live.settings.home))
    page, shot = browser_page, Shots(browser_page, tmp_path)
    log_in(page, dash, admin_token(live.settings))
    shot("01-teams")

    # launch a small evolve team from the form
    page.fill("input[name=team]", "t-dash")  # type: ignore[attr-defined]
    page.select_option("select[name=kind]", "evolve")  # type: ignore[attr-defined]
    page.fill("input[name=workers]", "2")  # type: ignore[attr-defined]
    page.select_option("select[name=testbed]", "wordsense")  # type: ignore[attr-defined]
    page.fill("input[name=minutes]", "10")  # type: ignore[attr-defined]
    page.fill("input[name=submissions]", "2")  # type: ignore[attr-defined]
    page.click("summary")  # type: ignore[attr-defined]
    page.fill("textarea[name=toml]", "[evolve]\nchildren = 2\nmax_generations = 2\nmin_label_change = 0\n")  # type: ignore[attr-defined]
    page.click("#launch-form button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_url("**/teams/t-dash")  # type: ignore[attr-defined]
    page.wait_for_selector("#workers-table tr[data-worker='t-dash-w02']")  # type: ignore[attr-defined]
    page.wait_for_selector("#workers-table .phase.running", timeout=60_000)  # type: ignore[attr-defined]
    shot("02-team-running")

    # a submission lands: the live table shows it without a reload
    page.wait_for_function(  # type: ignore[attr-defined]
        "() => [...document.querySelectorAll('#workers-table td.subs')].some(td => td.textContent.trim() !== '0')",
        timeout=150_000)
    # the plot draws released scores: it fills once a submission beats W by the minimum improvement
    page.wait_for_selector("svg.plot polyline, svg.plot circle", state="attached", timeout=150_000)  # type: ignore[attr-defined]
    page.wait_for_selector("#leaderboard td strong")  # type: ignore[attr-defined]  # the eval server's board
    shot("03-submission-live")

    # the transcript of the first worker, with its submission
    page.click("#workers-table a[href$='t-dash-w01']")  # type: ignore[attr-defined]
    page.wait_for_selector("#entries .entry.tool_call")  # type: ignore[attr-defined]
    page.wait_for_selector("#entries .entry.submission", timeout=120_000)  # type: ignore[attr-defined]
    page.fill("#filter", "submission")  # type: ignore[attr-defined]
    assert page.locator("#entries .entry.hidden").count() > 0  # type: ignore[attr-defined]
    shot("04-transcript")

    # the idea tree: ideas with their code and submissions
    page.goto(f"{dash}/teams/t-dash/ideas")  # type: ignore[attr-defined]
    page.wait_for_selector("ul.tree li[id] .family")  # type: ignore[attr-defined]
    assert page.locator("ul.tree a.ref[href*='?q=sub']").count() > 0  # type: ignore[attr-defined]
    shot("05-ideas")

    # a finding the workers shared
    page.goto(f"{dash}/forum?team=t-dash")  # type: ignore[attr-defined]
    page.wait_for_selector("#findings a[href^='/forum/']", timeout=60_000)  # type: ignore[attr-defined]
    page.click("#findings a[href^='/forum/']")  # type: ignore[attr-defined]
    page.wait_for_selector("#finding-body")  # type: ignore[attr-defined]
    shot("06-finding")

    # search across every worker's trajectory and the forum; the testbeds' cards and baselines
    page.fill("header form.search input[name=q]", "share_finding")  # type: ignore[attr-defined]
    page.press("header form.search input[name=q]", "Enter")  # type: ignore[attr-defined]
    page.wait_for_selector(".hit a[href*='/workers/t-dash-w0']")  # type: ignore[attr-defined]
    page.goto(f"{dash}/testbeds")  # type: ignore[attr-defined]
    page.wait_for_selector("section#wordsense table")  # type: ignore[attr-defined]
    shot("06-testbeds")

    # stop the team from its page (the confirmation is accepted)
    page.goto(f"{dash}/teams/t-dash")  # type: ignore[attr-defined]
    page.once("dialog", lambda d: d.accept())  # type: ignore[attr-defined]
    page.click("#stop-button")  # type: ignore[attr-defined]
    page.wait_for_selector("#team-phase.stopped", timeout=120_000)  # type: ignore[attr-defined]
    assert page.locator("#workers-table .phase.running").count() == 0  # type: ignore[attr-defined]
    assert page.locator("#stop-button").count() == 0  # type: ignore[attr-defined]
    shot("07-stopped")

    # the report's own plots, built from the page, shown when ready (a live refresh)
    page.click("form[action$='/report'] button")  # type: ignore[attr-defined]
    page.wait_for_selector(".plots img[alt='pgr plot']", timeout=120_000)  # type: ignore[attr-defined]
    page.wait_for_function("() => [...document.querySelectorAll('.plots img')].every(i => i.naturalWidth > 0)")  # type: ignore[attr-defined]
    assert page.locator("#static-report").count() == 1  # type: ignore[attr-defined]
    shot("08-report-plots")


def test_hostile_agent_text_is_inert_in_the_browser(live: Live, dash: str, browser_page: object,
                                                    tmp_path: Path) -> None:
    page, shot = browser_page, Shots(browser_page, tmp_path)
    token = live.tokens.create("t-evil-w01", "t-evil")
    with HubClient(live.hub_url, token) as hub:
        finding = hub.post_finding({"title": "<script>alert('title')</script>", "body": HOSTILE, "kind": "insight"})
        hub.comment(finding.id, HOSTILE)
    state = fake_team(live.settings, "t-evil", workers=1, hub_url=live.hub_url, eval_url=live.eval_url)
    worker = next(iter(state.workers))
    tr = trajectory(live.settings, "t-evil", worker)
    tr.append("run_start", kind="llm", budget={}, prior={})
    tr.append("tool_result", name="shell", ok=True, result=HOSTILE)
    tr.append("message", role="assistant", text="<img src=x onerror=alert('transcript')>")
    (live.settings.runs_dir / "t-evil" / "workers" / worker / "workspace" / "NOTEBOOK.md").write_text(HOSTILE)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))  # type: ignore[attr-defined]
    log_in(page, dash, admin_token(live.settings))
    for url in (f"/forum/{finding.id}", "/forum", f"/teams/t-evil/workers/{worker}", "/search?q=pwned"):
        page.goto(dash + url)  # type: ignore[attr-defined]
        page.wait_for_load_state("load")  # type: ignore[attr-defined]
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")  # type: ignore[attr-defined]
        page.wait_for_timeout(800)  # type: ignore[attr-defined]  # live polls ran at least once
        injected = page.evaluate(PROBE)  # type: ignore[attr-defined]
        assert injected == {"pwned": 0, "inlineScripts": 0, "imgs": 0, "handlers": 0, "badLinks": 0, "svgs": 0}, (
            url, injected)
        shot("hostile-" + url.strip("/").replace("/", "-").replace("?", "-")[:40])
    assert dialogs == []
    html = page.request.get(f"{dash}/forum/{finding.id}").text()  # type: ignore[attr-defined]
    assert html.count("<script") == 1 and 'src="/static/dash.js"' in html  # ours only
    for bad in ("<img", "<svg onload", 'href="javascript', 'href="data:', "onerror=\""):
        assert bad not in html, bad
    page.goto(f"{dash}/forum/{finding.id}")  # type: ignore[attr-defined]
    assert "window.__pwned = 1" in page.inner_text("#finding-body")  # type: ignore[attr-defined]  # shown as text
