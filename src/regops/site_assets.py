"""The registry website's fixed files: its style sheet, and the "serving on a date" form and script."""

from __future__ import annotations

from typing import Final

__all__ = ["SERVING_FORM", "SERVING_SCRIPT", "STYLE"]

SERVING_FORM: Final = (
    "<p>Pick a moment (UTC): the table shows which version held dev, staging and prod of each model then, "
    "as recorded by the transitions. Each model's page lists every change.</p>"
    "<noscript><p>This view needs JavaScript; without it, each model page lists who held each stage when.</p>"
    "</noscript>"
    '<form id="when"><label for="date">Date</label> <input id="date" name="date" type="date" required> '
    '<label for="time">Time (UTC)</label> <input id="time" name="time" type="time" step="1" value="00:00:00"> '
    '<button type="submit">Show</button></form>'
    '<p id="answer-at" aria-live="polite"></p>'
)

# The "serving on a date" view: looks up, per model, the last change at or before the moment asked (the answers
# themselves were computed by Registry.holder when the site was built). Reads ?date=YYYY-MM-DD&time=HH:MM:SS.
SERVING_SCRIPT: Final = """\
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("serving-data").textContent);
  const form = document.getElementById("when");
  const rows = document.querySelectorAll("tbody tr");
  function cell(model, version) {
    if (version === null) { return document.createTextNode("\\u2013"); }
    const a = document.createElement("a");
    a.href = "models/" + encodeURIComponent(model) + "/" + encodeURIComponent(version) + ".html";
    a.textContent = version;
    return a;
  }
  function holdersAt(changes, moment) {
    let found = null;
    for (const change of changes) {
      if (Date.parse(change[0]) > moment) { break; }
      found = change;
    }
    return found ? found.slice(1) : data.stages.map(function () { return null; });
  }
  function show(date, time) {
    const moment = Date.parse(date + "T" + (time || "00:00:00") + "Z");
    if (Number.isNaN(moment)) { return; }
    document.getElementById("answer-at").textContent = "At " + new Date(moment).toISOString() + ":";
    Object.keys(data.models).forEach(function (model, i) {
      const cells = rows[i].querySelectorAll("td");
      holdersAt(data.models[model], moment).forEach(function (version, s) {
        cells[s + 1].replaceChildren(cell(model, version));
      });
    });
  }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    show(form.elements.date.value, form.elements.time.value);
  });
  const asked = new URLSearchParams(window.location.search);
  const date = asked.get("date") || new Date().toISOString().slice(0, 10);
  form.elements.date.value = date;
  if (asked.get("time")) { form.elements.time.value = asked.get("time"); }
  show(date, asked.get("time") || (asked.get("date") ? "00:00:00" : new Date().toISOString().slice(11, 19)));
})();
"""

STYLE: Final = """\
:root { color: #1b1b1b; background: #ffffff; font: 15px/1.45 system-ui, sans-serif; }
body { margin: 0 auto; max-width: 72rem; padding: 0 1rem 3rem; }
header nav { padding: .75rem 0; border-bottom: 1px solid #c8c8c8; }
a { color: #0b4f9c; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; }
th, td { border: 1px solid #c8c8c8; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #eef1f5; }
code { font-size: .85em; word-break: break-all; }
time { white-space: nowrap; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
dt { font-weight: 600; }
.rollback { color: #9c1c1c; }
.chart svg { max-width: 100%; height: auto; border: 1px solid #c8c8c8; }
svg.lineage { max-width: 100%; height: auto; }
.chart polyline, .lineage .edge { stroke: #0b4f9c; stroke-width: 2; fill: none; }
.chart circle { fill: #0b4f9c; }
svg text { font-size: 12px; fill: #1b1b1b; }
.lineage a text { fill: #0b4f9c; text-decoration: underline; }
.lineage .dataset { fill: #4a4a4a; }
form { margin: 1rem 0; }
"""
