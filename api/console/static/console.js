// The console's only script: select-all checkboxes, confirmations, job progress polling.
// No library, no network but the console's own JSON (Content-Security-Policy: 'self').
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const all of document.querySelectorAll("input[data-select-all]")) {
    const name = all.dataset.selectAll;
    const boxes = () => all.form.querySelectorAll(`input[type=checkbox][name="${name}"]`);
    all.addEventListener("change", () => { for (const b of boxes()) b.checked = all.checked; });
  }
  for (const b of document.querySelectorAll("button[data-confirm]")) {
    b.addEventListener("click", (e) => { if (!window.confirm(b.dataset.confirm)) e.preventDefault(); });
  }
  const job = document.getElementById("job");
  if (job && job.dataset.progressUrl && job.dataset.finished !== "true") poll(job);
});

function poll(job) {
  const set = (sel, v) => { const el = job.querySelector(sel); if (el) el.textContent = v; };
  const tick = async () => {
    let j;
    try {
      const r = await fetch(job.dataset.progressUrl, { credentials: "same-origin", cache: "no-store" });
      if (!r.ok) throw new Error(String(r.status));
      j = await r.json();
    } catch (e) {
      setTimeout(tick, 3000);
      return;
    }
    const pct = j.progress === null ? (j.finished ? 100 : 0) : Math.floor(j.progress * 100);
    const bar = job.querySelector("[data-bar]");
    if (bar) { bar.value = pct; bar.className = "job " + j.state; }
    set("[data-pct]", pct + "%");
    set("[data-state]", j.state);
    set("[data-done]", j.done); set("[data-failed]", j.failed); set("[data-skipped]", j.skipped);
    set("[data-total]", j.total === null ? "?" : j.total);
    const state = job.querySelector("[data-state]");
    if (state) state.className = "badge " + j.state;
    if (j.finished) { window.location.reload(); return; }  // the report is written at the end
    setTimeout(tick, 700);
  };
  setTimeout(tick, 500);
}
