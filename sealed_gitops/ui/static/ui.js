// sealed-gitops ui: the little script the pages use, loaded from /static/ (no inline script).
// It only filters table rows and shows times in the reader's time zone; it sends no request.
"use strict";

function filterRows(input) {
  const table = document.getElementById(input.dataset.filter);
  if (!table) return;
  const needle = input.value.trim().toLowerCase();
  for (const row of table.tBodies[0].rows) {
    row.classList.toggle("hidden", needle !== "" && !row.textContent.toLowerCase().includes(needle));
  }
}

function localTimes() {
  for (const el of document.querySelectorAll("time")) {
    const text = el.textContent.trim();
    const when = Date.parse(text);
    if (!text || Number.isNaN(when)) continue;
    el.title = text;
    el.textContent = new Date(when).toLocaleString();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const input of document.querySelectorAll("input.filter")) {
    input.addEventListener("input", () => filterRows(input));
  }
  localTimes();
});
