// aar dashboard: the live parts. Served from /static (the CSP allows no inline script).
// Polls "what changed" with If-None-Match (304 when nothing did) and swaps in server-rendered,
// escaped fragments; follows a transcript by byte offset. Never builds HTML from data itself.
"use strict";
(function () {
  const poll = parseInt(document.body.dataset.pollMs || "2000", 10);

  async function fetchText(url, opts) {
    const r = await fetch(url, Object.assign({ credentials: "same-origin" }, opts || {}));
    if (r.status === 401) { window.location.href = "/login?next=" + encodeURIComponent(location.pathname); return null; }
    return r;
  }

  // [data-live][data-version]: refresh the fragment when the version (ETag) moves
  function liveSection(el) {
    let etag = null;
    async function tick() {
      try {
        const headers = etag ? { "If-None-Match": etag } : {};
        const r = await fetchText(el.dataset.version, { headers: headers });
        if (r && r.status === 200) {
          const first = etag === null;
          etag = r.headers.get("ETag");
          if (!first) {
            const f = await fetchText(el.dataset.live);
            if (f && f.ok) { el.innerHTML = await f.text(); el.dispatchEvent(new Event("refreshed")); }
          }
        }
      } catch (e) { /* server restarting: try again next tick */ }
      setTimeout(tick, poll);
    }
    tick();
  }
  document.querySelectorAll("[data-live][data-version]").forEach(liveSection);

  // confirmations for dangerous forms
  document.addEventListener("submit", function (ev) {  // delegated: live fragments replace their forms
    const f = ev.target;
    if (f.dataset && f.dataset.confirm && !window.confirm(f.dataset.confirm)) ev.preventDefault();
  });

  const box = document.getElementById("transcript");
  if (!box) return;
  const entries = document.getElementById("entries");
  const filter = document.getElementById("filter");
  const follow = document.getElementById("follow");
  let end = parseInt(box.dataset.end, 10);
  let start = parseInt(box.dataset.start, 10);

  function applyFilter(root) {
    const q = (filter.value || "").toLowerCase();
    (root || entries).querySelectorAll(".entry").forEach(function (e) {
      e.classList.toggle("hidden", q !== "" && (e.dataset.search || "").indexOf(q) < 0);
    });
  }
  filter.addEventListener("input", function () { applyFilter(); });

  function parse(html) {
    const t = document.createElement("template");
    t.innerHTML = html;  // server-rendered and escaped; scripts in a template never run
    return t.content;
  }

  async function more() {
    try {
      const r = await fetchText(box.dataset.src + "?after=" + end);
      if (r && r.status === 200) {
        const frag = parse(await r.text());
        applyFilter(frag);
        entries.appendChild(frag);
        end = parseInt(r.headers.get("X-Offset"), 10);
        if (follow && follow.checked) window.scrollTo(0, document.body.scrollHeight);
      }
    } catch (e) { /* retry next tick */ }
    setTimeout(more, poll);
  }
  if (box.dataset.live === "1") {
    if (follow && follow.checked && !location.hash) window.scrollTo(0, document.body.scrollHeight);
    setTimeout(more, poll);
  }

  const earlier = document.getElementById("earlier");
  if (earlier) earlier.addEventListener("click", async function () {
    const r = await fetchText(box.dataset.src + "?before=" + start);
    if (!r || !r.ok) return;
    const frag = parse(await r.text());
    applyFilter(frag);
    entries.insertBefore(frag, entries.firstChild);
    start = parseInt(r.headers.get("X-Start"), 10);
    if (start <= 0) earlier.remove();
  });

  entries.addEventListener("click", async function (ev) {
    const b = ev.target.closest("button.show-all");
    if (!b) return;
    const r = await fetchText(box.dataset.line + "?offset=" + b.dataset.offset);
    if (!r || !r.ok) return;
    const frag = parse(await r.text());
    const old = document.getElementById("o" + b.dataset.offset);
    const fresh = frag.firstElementChild;
    if (old && fresh) { fresh.querySelectorAll("details").forEach(function (d) { d.open = true; }); old.replaceWith(fresh); }
  });

  if (location.hash) { const t = document.getElementById(location.hash.slice(1)); if (t) t.scrollIntoView(); }
})();
