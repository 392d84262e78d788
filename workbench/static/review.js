// The threshold explorer's slider: accepted accuracy and Unknown rate at any threshold, read from the curve the
// server computed from the evaluation's per-image answers (no request per move).
(function () {
  "use strict";
  function pct(x, digits) { return x === null ? "n/a" : (x * 100).toFixed(digits) + "%"; }
  function at(points, t) {
    // Answers at or above t are kept: the same as at the lowest curve threshold at or above t.
    for (const [threshold, accepted, unknown] of points) {
      if (threshold >= t) return [accepted, unknown];
    }
    return [null, 1];  // above every confidence: every answer goes to a person
  }
  document.querySelectorAll("div.explorer").forEach(function (box) {
    const data = box.querySelector("script.curve");
    const slider = box.querySelector("input.slider");
    const out = box.querySelector("output.live-figures");
    if (!data || !slider || !out) return;
    const points = JSON.parse(data.textContent);
    function show() {
      const t = Number(slider.value);
      const [accepted, unknown] = at(points, t);
      out.textContent = "at " + t.toFixed(4) + ": " + pct(accepted, 2) + " accepted accuracy, " + pct(unknown, 2) + " Unknown";
      out.dataset.accepted = accepted === null ? "" : String(accepted);
      out.dataset.unknown = String(unknown);
    }
    slider.addEventListener("input", show);
    show();
  });
})();
