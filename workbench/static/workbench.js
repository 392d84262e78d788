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
