/* pytest-vlmsafety report: filters, "show all" toggles and the Audit view. Plain JavaScript, no network.
 * Everything it reads comes from data attributes and text already escaped in the page; it
 * never writes HTML, only toggles `hidden` and sets textContent. */
(function () {
  "use strict";

  var suiteSelect = document.getElementById("filter-suite");
  var categorySelect = document.getElementById("filter-category");
  var outcomeSelect = document.getElementById("filter-outcome");
  var searchBox = document.getElementById("filter-text");
  var countLabel = document.getElementById("visible-count");
  if (!suiteSelect || !categorySelect || !outcomeSelect || !searchBox || !countLabel) {
    return;
  }
  var entries = Array.prototype.slice.call(document.querySelectorAll("[data-filterable]"));
  var groups = Array.prototype.slice.call(document.querySelectorAll("[data-group]"));
  // Lower-cased text of each entry, read on the first search only: reading it for thousands
  // of cards at load time would slow the page's opening for nothing.
  var searchText = null;

  function textOf(index) {
    if (searchText === null) {
      searchText = entries.map(function (entry) { return entry.textContent.toLowerCase(); });
    }
    return searchText[index];
  }

  function categoryBelongs(option, suite) {
    if (!suite || !option.value) { return true; }
    try {
      return JSON.parse(option.getAttribute("data-suites") || "[]").indexOf(suite) !== -1;
    } catch (error) {
      return true;
    }
  }

  function narrowCategories() {
    var suite = suiteSelect.value;
    Array.prototype.forEach.call(categorySelect.options, function (option) {
      option.hidden = !categoryBelongs(option, suite);
    });
    var chosen = categorySelect.options[categorySelect.selectedIndex];
    if (chosen && chosen.hidden) { categorySelect.value = ""; }
  }

  function apply() {
    var suite = suiteSelect.value;
    var category = categorySelect.value;
    var outcome = outcomeSelect.value;
    var query = searchBox.value.trim().toLowerCase();
    var shown = 0;
    entries.forEach(function (entry, index) {
      var visible = (!suite || entry.getAttribute("data-suite") === suite) &&
        (!category || entry.getAttribute("data-category") === category) &&
        (!outcome || entry.getAttribute("data-outcome") === outcome) &&
        (!query || textOf(index).indexOf(query) !== -1);
      entry.hidden = !visible;
      if (visible) { shown += 1; }
    });
    // A group whose entries are all filtered out disappears with its heading; a group that
    // never had entries keeps its "None." line.
    groups.forEach(function (group) {
      var members = group.querySelectorAll("[data-filterable]");
      var visible = group.querySelectorAll("[data-filterable]:not([hidden])").length;
      group.hidden = members.length > 0 && visible === 0;
      var counter = group.firstElementChild ? group.firstElementChild.querySelector(".group-count") : null;
      if (counter) {
        var total = counter.getAttribute("data-total");
        counter.textContent = "(" + (visible === members.length ? total : visible + " of " + total) + ")";
      }
    });
    countLabel.textContent = shown + " of " + entries.length + " shown";
  }

  var pending = null;
  function applySoon() {
    if (pending !== null) { clearTimeout(pending); }
    pending = setTimeout(function () { pending = null; apply(); }, 120);
  }

  suiteSelect.addEventListener("change", function () { narrowCategories(); apply(); });
  categorySelect.addEventListener("change", apply);
  outcomeSelect.addEventListener("change", apply);
  searchBox.addEventListener("input", applySoon);
  searchBox.addEventListener("search", apply);

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button.show-all") : null;
    if (!button) { return; }
    var text = button.previousElementSibling;
    var rest = text ? text.querySelector(".rest") : null;
    if (!rest) { return; }
    rest.hidden = !rest.hidden;
    button.textContent = rest.hidden ? button.getAttribute("data-more") : button.getAttribute("data-less");
  });

  // Filters restored by the browser on reload (form state) must take effect.
  narrowCategories();
  if (suiteSelect.value || categorySelect.value || outcomeSelect.value || searchBox.value) { apply(); }
})();

/* The Audit view: label the sampled items and save the audit file. The file is made in the
 * page (a Blob and a download link): nothing is sent anywhere, and it works from file://. Each
 * item's line is the audit file's own JSON line, read from a data attribute; only `label` changes. */
(function () {
  "use strict";

  var items = Array.prototype.slice.call(document.querySelectorAll("[data-audit-line]"));
  var count = document.getElementById("audit-count");
  var save = document.getElementById("audit-save");
  if (!items.length || !count || !save) {
    return;
  }

  function chosen(item) {
    var input = item.querySelector("input[type=radio]:checked");
    return input ? input.value : null;
  }

  function update() {
    var labelled = items.filter(function (item) { return chosen(item) !== null; }).length;
    count.textContent = labelled + " of " + items.length + " labelled";
  }

  document.addEventListener("change", function (event) {
    if (event.target && event.target.closest && event.target.closest("[data-audit-line]")) { update(); }
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button.audit-clear") : null;
    if (!button) { return; }
    var item = button.closest("[data-audit-line]");
    Array.prototype.forEach.call(item.querySelectorAll("input[type=radio]"), function (input) { input.checked = false; });
    update();
  });

  save.addEventListener("click", function () {
    var lines = items.map(function (item) {
      var line = JSON.parse(item.getAttribute("data-audit-line"));
      line.label = chosen(item);
      return JSON.stringify(line);
    });
    var blob = new Blob([lines.join("\n") + "\n"], { type: "application/x-ndjson" });
    var url = URL.createObjectURL(blob);
    var link = document.createElement("a");
    link.href = url;
    link.download = "vlmsafety-audit.jsonl";
    link.hidden = true;
    document.body.appendChild(link);
    link.click();
    setTimeout(function () { URL.revokeObjectURL(url); link.remove(); }, 1000);
  });

  update();
})();
