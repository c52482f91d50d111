(function () {
  "use strict";
  // Long lists ("since the previous run", "by post", "by host") show their first page; the
  // rest wait in inert <template>s, moved in by "Show more".
  Array.prototype.forEach.call(document.querySelectorAll("button.show-more"), function (button) {
    var list = document.getElementById(button.getAttribute("data-list"));
    if (!list) { return; }
    var waiting = Array.prototype.filter.call(list.children, function (child) {
      return child.tagName === "TEMPLATE" && child.classList.contains("more");
    });
    function label() {
      var left = waiting.reduce(function (n, t) { return n + t.content.childElementCount; }, 0);
      var next = waiting.length ? waiting[0].content.childElementCount : 0;
      button.textContent = "Show " + next + " more (" + left + " " + button.getAttribute("data-noun") +
        " not shown)";
      button.hidden = waiting.length === 0;
    }
    button.addEventListener("click", function () {
      var template = waiting.shift();
      if (template) { template.replaceWith(template.content); }
      label();
    });
    label();
  });

  // A decoded URL (readable IRI) copies as the exact URL it stands for.
  document.addEventListener("copy", function (event) {
    var selection = window.getSelection();
    if (!selection || selection.rangeCount !== 1 || !event.clipboardData) { return; }
    var node = selection.getRangeAt(0).commonAncestorContainer;
    var element = node.nodeType === 1 ? node : node.parentElement;
    var holder = element && element.closest("[data-url]");
    if (!holder) { return; }
    event.clipboardData.setData("text/plain", holder.getAttribute("data-url"));
    event.preventDefault();
  });

  // The all-links table: rows live in a JSON block; only the visible page is ever in the DOM,
  // so filtering and sorting stay fast with 100,000 links. Data is set with textContent only.
  // A big table is split: the page holds its first rows, the rest are script files beside it
  // (data.chunks, worst rows first), added one at a time when a page, a filter, a search or a
  // sort needs rows not here yet; each calls linkkeeperRows(n, block).
  var source = document.getElementById("links-data");
  if (!source) { return; }
  var data = JSON.parse(source.textContent);
  var S = data.statuses, T = data.states, K = data.kinds, H = data.hosts, C = data.times;
  var rows = [], P = [], chunks = data.chunks || [], loaded = 0, total = data.total;
  var $ = function (id) { return document.getElementById(id); };
  var text = $("f-text"), status = $("f-status"), state = $("f-state"), kind = $("f-kind"),
      host = $("f-host"), body = $("links-body"), info = $("links-info"),
      prev = $("page-prev"), next = $("page-next"), size = $("page-size");
  var U = 0, HOST = 1, STATUS = 2, STATE = 3, KINDS = 4, HTTP = 5, REASON = 6, POSTS = 7,
      POST = 8, CHECKED = 9, ARCHIVE = 10, CHANGE = 11, SHOWN = 12;
  var page = 0, view = rows, sortKey = -1, sortDir = 1, haystack = null;
  var webUrl = /^https?:\/\//i;

  function take(block) {
    var base = P.length, i;
    for (i = 0; i < block.posts.length; i++) { P.push(block.posts[i]); }
    for (i = 0; i < block.rows.length; i++) {
      var r = block.rows[i];
      if (r[POST] >= 0) { r[POST] += base; }
      rows.push(r);
    }
    haystack = null;
  }
  take(data);
  if (typeof total !== "number") { total = rows.length; }

  var wanted = 0, then = null, busy = false, broken = false;
  window.linkkeeperRows = function (n, block) {
    if (n === loaded + 1) { take(block); loaded = n; }
  };
  // Run `done` once `count` rows are here (or every file is): the latest caller wins.
  function ensure(count, done) {
    wanted = Math.max(wanted, count);
    then = done;
    if (busy) { return; }
    if (rows.length >= wanted || loaded >= chunks.length || broken) {
      wanted = 0; then = null;
      done();
      return;
    }
    busy = true;
    info.textContent = "Loading links… " + rows.length + " of " + total + " read";
    var script = document.createElement("script");
    var n = loaded + 1;
    script.src = chunks[loaded];
    script.onload = function () {
      busy = false;
      script.remove();
      if (loaded < n) { broken = chunks[n - 1]; total = rows.length; }
      ensure(0, then);
    };
    script.onerror = function () {
      busy = false;
      broken = chunks[n - 1];
      total = rows.length;
      ensure(0, then);
    };
    document.head.appendChild(script);
  }
  function complete() { return loaded >= chunks.length || broken; }

  function fill(select, names) {
    names.forEach(function (name, i) {
      var option = document.createElement("option");
      option.value = String(i);
      option.textContent = name;
      select.appendChild(option);
    });
  }
  fill(status, S); fill(state, T); fill(kind, K);
  var hostList = $("f-host-list");
  H.slice().sort().forEach(function (name) {
    var option = document.createElement("option");
    option.value = name;
    hostList.appendChild(option);
  });

  function search(i) {
    if (haystack === null) {
      haystack = rows.map(function (r) {
        return (r[U] + " " + r[SHOWN] + " " + H[r[HOST]] + " " + r[REASON] + " " +
                (P[r[POST]] || "")).toLowerCase();
      });
    }
    return haystack[i];
  }

  function apply() {
    var q = text.value.trim().toLowerCase(), st = status.value, sa = state.value,
        kd = kind.value, hs = host.value.trim().toLowerCase();
    var wantStatus = st === "" ? -1 : +st, wantState = sa === "" ? -1 : +sa,
        wantKind = kd === "" ? 0 : (1 << +kd);
    if (!q && !st && !sa && !kd && !hs && sortKey < 0) {  // every row, in the page's order
      view = rows;
      page = 0;
      render();
      return;
    }
    if (!complete()) { ensure(Infinity, apply); return; }
    var out = [];
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i];
      if (wantStatus >= 0 && r[STATUS] !== wantStatus) { continue; }
      if (wantState >= 0 && r[STATE] !== wantState) { continue; }
      if (wantKind && !(r[KINDS] & wantKind)) { continue; }
      if (hs && H[r[HOST]].toLowerCase().indexOf(hs) < 0) { continue; }
      if (q && search(i).indexOf(q) < 0) { continue; }
      out.push(r);
    }
    view = out;
    sort();
    page = 0;
    render();
  }

  function value(r, key) {
    if (key === HOST) { return H[r[HOST]]; }
    if (key === STATUS) { return r[STATUS]; }  // statuses are listed worst first
    if (key === POST) { return P[r[POST]] || ""; }
    if (key === CHECKED) { return C[r[CHECKED]]; }
    if (key === STATE) { return T[r[STATE]]; }
    var v = r[key];
    return v === null || v === undefined ? "" : v;
  }

  function sort() {
    if (sortKey < 0) { return; }
    var key = sortKey, dir = sortDir;
    view = view.slice().sort(function (a, b) {
      var x = value(a, key), y = value(b, key);
      if (x === y) { return a[U] < b[U] ? -1 : a[U] > b[U] ? 1 : 0; }
      if (x === "") { return 1; }
      if (y === "") { return -1; }
      return (x < y ? -1 : 1) * dir;
    });
  }

  function cell(tr, cls, content) {
    var td = document.createElement("td");
    if (cls) { td.className = cls; }
    if (content !== undefined && content !== null) {
      if (typeof content === "object") { td.appendChild(content); } else { td.textContent = String(content); }
    }
    tr.appendChild(td);
    return td;
  }

  function badge(name, extra) {
    var span = document.createElement("span");
    span.className = "badge s-" + name;
    span.textContent = name + (extra ? " " + extra : "");
    return span;
  }

  function link(url, shown) {
    var element;
    if (!webUrl.test(url)) {
      element = document.createElement("span");
      element.className = "nolink";
    } else {
      element = document.createElement("a");
      element.href = url;
      element.rel = "noopener noreferrer";
    }
    element.textContent = shown || url;
    if (shown) {  // a readable IRI: the exact URL on hover and on copy
      element.title = url;
      element.setAttribute("data-url", url);
    }
    return element;
  }

  function render() {
    var count = view === rows ? total : view.length;
    var per = +size.value || 100, pages = Math.max(1, Math.ceil(count / per));
    if (page >= pages) { page = pages - 1; }
    var start = page * per, end = Math.min(count, start + per);
    if (end > view.length && !complete()) { ensure(end, render); return; }  // still in files
    end = Math.min(end, view.length);
    var frag = document.createDocumentFragment();
    for (var i = start; i < end; i++) {
      var r = view[i], tr = document.createElement("tr");
      var first = cell(tr, "url", link(r[U], r[SHOWN]));
      if (r[CHANGE]) { first.appendChild(document.createTextNode(" ")); first.appendChild(badge(r[CHANGE])); }
      cell(tr, "", badge(S[r[STATUS]], r[HTTP] || ""));
      cell(tr, "", badge(T[r[STATE]]));
      cell(tr, "hide-sm", K.filter(function (_, k) { return r[KINDS] & (1 << k); }).join(", "));
      cell(tr, "", H[r[HOST]]);
      cell(tr, "hide-sm", r[REASON]);
      var path = P[r[POST]] || "";
      var post = cell(tr, "hide-sm", path.split("/").pop() + (r[POSTS] > 1 ? " +" + (r[POSTS] - 1) : ""));
      post.title = path;
      var when = C[r[CHECKED]];
      var checked = cell(tr, "hide-sm nowrap", when.slice(0, 10));
      checked.title = when ? when + " UTC" : "";
      var arch = cell(tr, "");
      var copy = /^\d{14}$/.test(r[ARCHIVE]) ? "archive/" + r[ARCHIVE] + "/" + r[U] : r[ARCHIVE];
      if (copy && /^(archive\/|https?:\/\/)/.test(copy)) {
        var a = document.createElement("a");
        a.href = copy;
        a.textContent = "archived";
        arch.appendChild(a);
      }
      frag.appendChild(tr);
    }
    body.textContent = "";
    body.appendChild(frag);
    info.textContent = count === 0 ? "No link matches." :
      "Links " + (start + 1) + "–" + end + " of " + count +
      (count !== total ? " (filtered from " + total + ")" : "") +
      " · page " + (page + 1) + " of " + pages +
      (broken ? " · could not read " + broken + ": keep the report's .files folder next to it"
       : "");
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
  }

  var timer = 0;
  function later() { clearTimeout(timer); timer = setTimeout(apply, 120); }
  text.addEventListener("input", later);
  host.addEventListener("input", later);
  [status, state, kind].forEach(function (s) { s.addEventListener("change", apply); });
  size.addEventListener("change", function () { page = 0; render(); });
  prev.addEventListener("click", function () { page -= 1; render(); });
  next.addEventListener("click", function () { page += 1; render(); });
  Array.prototype.forEach.call(document.querySelectorAll("#links-table th[data-key]"), function (th) {
    th.querySelector("button").addEventListener("click", function () {
      var key = +th.getAttribute("data-key");
      sortDir = sortKey === key ? -sortDir : 1;
      sortKey = key;
      Array.prototype.forEach.call(document.querySelectorAll("#links-table th"), function (other) {
        other.removeAttribute("aria-sort");
      });
      th.setAttribute("aria-sort", sortDir > 0 ? "ascending" : "descending");
      if (!complete()) { ensure(Infinity, apply); return; }
      if (view === rows) { view = rows.slice(); }
      sort();
      page = 0;
      render();
    });
  });
  $("links-controls").hidden = false;
  apply();
}());
