// The Mappings page: the search filters as one types; a row becomes inputs, checked on the
// spot by the server; a deletion shows what it would hold back before it is confirmed.
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf"]') || {}).content || "";
  var L = mappingLabels;
  function post(what, body) {
    return fetch("/console/mappings/" + what, {
      method: "POST",
      headers: { "x-facto-csrf": csrf, "content-type": "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin"
    }).then(function (r) {
      return r.json().then(function (j) { j.status = r.status; return j; },
        function () { return { status: r.status, error: r.statusText }; });
    });
  }
  var search = document.getElementById("search");
  if (search) search.addEventListener("input", function () {
    var q = search.value.trim().toLowerCase();
    document.querySelectorAll("tr.entry").forEach(function (tr) {
      var text = tr.dataset.code + " " + ["account", "aux", "label"].map(function (k) {
        var td = tr.querySelector('td[data-key="' + k + '"]'); return td ? td.textContent : "";
      }).join(" ");
      tr.hidden = q !== "" && text.toLowerCase().indexOf(q) < 0;
    });
  });
  function context(el) {
    var section = el.closest("section.mapping");
    return { section: section, out: section.querySelector("pre.result") };
  }
  function edit(tr, table) {
    var keys = table.dataset.keys.split(",");
    tr.querySelectorAll("td[data-key]").forEach(function (td) {
      var i = document.createElement("input");
      i.name = td.dataset.key; i.value = td.textContent;
      td.textContent = ""; td.appendChild(i);
    });
    var cell = tr.lastElementChild;
    cell.innerHTML = "";
    var save = document.createElement("button");
    save.type = "button"; save.className = "save"; save.textContent = L.save;
    cell.appendChild(save);
    var ctx = context(tr);
    function body() {
      var fields = {};
      tr.querySelectorAll("td[data-key] input").forEach(function (i) {
        if (keys.indexOf(i.name) >= 0) fields[i.name] = i.value;
      });
      var codeInput = tr.querySelector("input.code");
      return { mapping: ctx.section.dataset.mapping, table: table.dataset.table,
        code: codeInput ? codeInput.value : tr.dataset.code, fields: fields,
        base: ctx.section.dataset.base || undefined };
    }
    function show(j, saved) {
      if (j.error) { ctx.out.textContent = L.refused + ": " + j.error; ctx.out.dataset.state = "error"; return; }
      ctx.out.textContent = (saved ? L.saved + " " : L.check + ": ") + L.would_release + ": " +
        ((j.releases || []).join(", ") || L.none) + "\n" + (j.diff || "");
      ctx.out.dataset.state = saved ? "saved" : "checked";
      // Saved, but not audited: it is saved all the same, and says what is missing.
      if (j.warning) ctx.out.textContent = "!! " + L.audit_missing + ": " + j.warning + "\n" + ctx.out.textContent;
    }
    var timer;
    tr.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { post("check", body()).then(function (j) { show(j, false); }); }, 250);
    });
    save.addEventListener("click", function () {
      post("save", body()).then(function (j) { show(j, true); if (!j.error) setTimeout(function () { location.reload(); }, 300); });
    });
  }
  document.querySelectorAll("table.entries").forEach(function (table) {
    table.addEventListener("click", function (e) {
      var tr = e.target.closest("tr.entry");
      if (!tr) return;
      if (e.target.classList.contains("edit")) edit(tr, table);
      if (e.target.classList.contains("delete")) {
        var ctx = context(tr);
        var req = { mapping: ctx.section.dataset.mapping, table: table.dataset.table, code: tr.dataset.code,
          base: ctx.section.dataset.base || undefined };
        post("delete", req).then(function (j) {
          if (j.error) { ctx.out.textContent = L.refused + ": " + j.error; ctx.out.dataset.state = "error"; return; }
          var holds = (j.holds || []).join(", ") || L.none;
          if (j.impact_unknown) holds += "\n!! " + j.impact_unknown.join("\n!! ");
          if (!window.confirm(L.confirm_delete + " [" + req.table + "] " + req.code + "\n" + L.would_hold + ": " + holds + "\n" + (j.diff || ""))) return;
          req.confirm = true;
          post("delete", req).then(function (k) {
            if (k.error) { ctx.out.textContent = L.refused + ": " + k.error; return; }
            ctx.out.textContent = L.saved + (k.warning ? "\n!! " + L.audit_missing + ": " + k.warning : "");
            ctx.out.dataset.state = "deleted";
            setTimeout(function () { location.reload(); }, 300);
          });
        });
      }
    });
  });
  document.querySelectorAll("button.add").forEach(function (b) {
    b.addEventListener("click", function () {
      var table = b.parentElement.previousElementSibling;
      var head = table.querySelectorAll("thead th");
      var tr = document.createElement("tr");
      tr.className = "entry new";
      var html = '<td><input class="code" name="code" placeholder="code"></td>';
      for (var i = 1; i < head.length - 1; i++) html += '<td data-key="' + head[i].textContent + '"></td>';
      tr.innerHTML = html + "<td></td>";
      table.querySelector("tbody").appendChild(tr);
      tr.dataset.code = "";
      edit(tr, table);
    });
  });
})();
