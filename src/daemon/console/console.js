// The console's little script: changes are sent with the session's CSRF header, and the
// export selection is counted as it changes.
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf"]') || {}).content || "";
  function send(url, body) {
    return fetch(url, {
      method: "POST",
      headers: { "x-facto-csrf": csrf, "content-type": "application/json" },
      body: body === undefined ? "{}" : JSON.stringify(body),
      credentials: "same-origin"
    }).then(function (r) {
      if (r.redirected) { location.href = r.url; return; }
      return r.text().then(function (html) {
        document.open(); document.write(html); document.close();
      });
    });
  }
  var logout = document.getElementById("logout");
  if (logout) logout.addEventListener("click", function () { send("/console/logout"); });

  var preview = document.getElementById("preview");
  if (preview) {
    var picks = function () { return Array.prototype.slice.call(preview.querySelectorAll("input.pick")); };
    var include = document.getElementById("include-exported");
    var count = function () {
      document.getElementById("to-export").textContent =
        picks().filter(function (p) { return !p.disabled && p.checked; }).length;
    };
    include.addEventListener("change", function () {
      picks().forEach(function (p) {
        if (p.classList.contains("exported")) { p.disabled = !include.checked; p.checked = include.checked; }
      });
      count();
    });
    preview.addEventListener("change", function (e) { if (e.target.classList.contains("pick")) count(); });
    document.getElementById("all").addEventListener("click", function () {
      picks().forEach(function (p) { if (!p.disabled) p.checked = true; }); count();
    });
    document.getElementById("none").addEventListener("click", function () {
      picks().forEach(function (p) { if (!p.disabled) p.checked = false; }); count();
    });
    document.getElementById("do-export").addEventListener("click", function (e) {
      e.target.disabled = true;
      var d = preview.dataset;
      send("/console/export", {
        job: d.job, target: d.target, journal: d.journal, from: d.from, to: d.to,
        include_exported: include.checked,
        exclude: picks().filter(function (p) { return !p.disabled && !p.checked; })
          .map(function (p) { return p.value; }),
        // Exactly what was ticked: nothing the preview did not show is exported.
        only: picks().filter(function (p) { return !p.disabled && p.checked; })
          .map(function (p) { return p.value; })
      });
    });
  }

  var cancel = document.getElementById("cancel");
  if (cancel) cancel.addEventListener("click", function () {
    if (window.confirm(cancel.dataset.confirm)) send("/console/exports/" + cancel.dataset.id + "/cancel");
  });
})();
