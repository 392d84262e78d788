// Small helpers shared by the pages. window.AOI_CSRF holds the session's CSRF token (set by base.html).
(function () {
  "use strict";
  // fetch() with the CSRF header that every POST needs.
  window.aoiPost = function (url, body) {
    return fetch(url, {
      method: "POST",
      headers: { "X-CSRF-Token": window.AOI_CSRF, "Accept": "application/json" },
      body: body,
      credentials: "same-origin",
    });
  };
  // Fragments loaded after the page: <div data-src="URL"> gets the HTML that URL answers (the gallery's counts).
  document.querySelectorAll("[data-src]").forEach(function (box) {
    fetch(box.dataset.src, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        box.innerHTML = html;
        var list = document.getElementById("labels");
        if (list) {
          box.querySelectorAll("a[data-label]").forEach(function (a) {
            if (a.dataset.label) { var o = document.createElement("option"); o.value = a.dataset.label; list.appendChild(o); }
          });
        }
      })
      .catch(function () { /* the link to the counts stays */ });
  });
  // "select all" checkboxes: <input type="checkbox" data-select-all="FORM_ID">
  document.querySelectorAll("input[data-select-all]").forEach(function (box) {
    box.addEventListener("change", function () {
      var form = document.getElementById(box.dataset.selectAll);
      if (!form) return;
      form.querySelectorAll('input[type="checkbox"][name="image_id"]').forEach(function (c) {
        c.checked = box.checked;
      });
    });
  });
})();
