// The review queue's keys: a digit per class, n (not a defect), b (bad image), s (skip) press the matching button
// of the decision form (a plain form: the page works without this script); g shows the Grad-CAM in place.
(function () {
  "use strict";
  var form = document.getElementById("decision-form");
  var link = document.getElementById("gradcam-link");
  var heat = document.getElementById("gradcam-image");
  var note = document.getElementById("gradcam-note");
  var sent = false;
  function showGradcam() {
    if (!link || !heat) return;
    if (!heat.hidden) { heat.hidden = true; return; }
    note.textContent = "computing…";
    heat.onload = function () { heat.hidden = false; note.textContent = "Grad-CAM shown under the image (g hides it)"; };
    heat.onerror = function () { note.textContent = "no Grad-CAM for this answer (the model's files are not here)"; };
    heat.src = link.href;
  }
  if (link) {
    link.addEventListener("click", function (event) { event.preventDefault(); showGradcam(); });
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    if (target && (target.tagName === "INPUT" || target.tagName === "SELECT" || target.tagName === "TEXTAREA")) return;
    var key = event.key.toLowerCase();
    if (!/^[0-9a-z]$/.test(key)) return;  // only the keys the buttons name
    if (key === "g") { event.preventDefault(); showGradcam(); return; }
    if (!form || sent) return;
    var button = form.querySelector('button[data-key="' + key + '"]');
    if (!button) return;
    event.preventDefault();
    sent = true;  // one decision per page: a held key must not decide the next answer unseen
    button.classList.add("pressed");
    form.requestSubmit(button);
  });
})();
