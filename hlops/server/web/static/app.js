/* hlops annotation app: number keys, span selection. Plain script, no dependencies.
   Datapoint text only ever reaches the page through textContent / createTextNode. */
(function () {
  "use strict";

  function all(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }

  function pageData() {
    var el = document.getElementById("page-data");
    return el ? JSON.parse(el.textContent) : null;
  }

  /* ------------------------------------------------------------ spans
     The API counts characters as Python does (code points); the DOM counts UTF-16 units.
     u16[i] is the UTF-16 offset of code point i. */
  function SpanWidget(fieldset, output) {
    this.fieldset = fieldset;
    this.text = output.text || "";
    this.cps = Array.from(this.text);
    this.u16 = [0];
    for (var i = 0; i < this.cps.length; i++) { this.u16.push(this.u16[i] + this.cps[i].length); }
    this.container = fieldset.querySelector(".span-text");
    this.list = fieldset.querySelector("ol.spans");
    this.input = fieldset.querySelector("input.spans-value");
    this.spans = (JSON.parse(this.input.value || "[]") || []).map(function (s) {
      return { start: s.start, end: s.end, label: s.label };
    });
    this.pending = null;
    var self = this;
    document.addEventListener("selectionchange", function () { self.readSelection(); });
    all("button.span-label", fieldset).forEach(function (button) {
      button.addEventListener("mousedown", function (e) { e.preventDefault(); });
      button.addEventListener("click", function () { self.add(button.getAttribute("data-label")); });
    });
    if (output.text !== null && output.text !== undefined) { this.render(); }
  }

  SpanWidget.prototype.floor = function (unit) {
    var i = 0;
    while (i < this.cps.length && this.u16[i + 1] <= unit) { i++; }
    return i;
  };
  SpanWidget.prototype.ceil = function (unit) {
    var i = 0;
    while (i < this.cps.length && this.u16[i] < unit) { i++; }
    return i;
  };

  SpanWidget.prototype.readSelection = function () {
    var sel = window.getSelection();
    if (!sel || sel.rangeCount === 0) { return; }
    var range = sel.getRangeAt(0);
    if (!this.container.contains(range.startContainer) || !this.container.contains(range.endContainer)) { return; }
    if (range.collapsed) { this.pending = null; return; }
    var before = document.createRange();
    before.selectNodeContents(this.container);
    before.setEnd(range.startContainer, range.startOffset);
    var s16 = before.toString().length;
    var e16 = s16 + range.toString().length;
    this.pending = { start: this.floor(s16), end: this.ceil(e16) };
  };

  SpanWidget.prototype.selectionInside = function () {
    var sel = window.getSelection();
    return !!(sel && sel.rangeCount && this.container.contains(sel.getRangeAt(0).startContainer));
  };

  SpanWidget.prototype.add = function (label) {
    this.readSelection();
    var p = this.pending;
    if (!p || p.end <= p.start) {
      this.say("Select some text first: an empty selection adds no span.");
      return false;
    }
    var dup = this.spans.some(function (s) { return s.start === p.start && s.end === p.end && s.label === label; });
    if (!dup) { this.spans.push({ start: p.start, end: p.end, label: label }); }
    this.spans.sort(function (a, b) {
      return a.start - b.start || a.end - b.end || (a.label < b.label ? -1 : a.label > b.label ? 1 : 0);
    });
    this.pending = null;
    window.getSelection().removeAllRanges();
    this.say(dup ? "That span is already there." : "");
    this.render();
    return true;
  };

  SpanWidget.prototype.say = function (message) {
    var el = this.fieldset.querySelector(".span-status");
    if (!el) {
      el = document.createElement("p");
      el.className = "span-status";
      el.setAttribute("role", "status");
      this.list.parentNode.insertBefore(el, this.list);
    }
    el.textContent = message;
  };

  SpanWidget.prototype.slice = function (a, b) { return this.text.slice(this.u16[a], this.u16[b]); };

  SpanWidget.prototype.render = function () {
    var self = this, n = this.cps.length;
    var cuts = [0, n];
    this.spans.forEach(function (s) { cuts.push(Math.min(s.start, n), Math.min(s.end, n)); });
    cuts = cuts.filter(function (v, i, arr) { return arr.indexOf(v) === i; }).sort(function (a, b) { return a - b; });
    this.container.textContent = "";
    for (var i = 0; i + 1 < cuts.length; i++) {
      var a = cuts[i], b = cuts[i + 1];
      var covering = this.spans.filter(function (s) { return s.start <= a && s.end >= b; });
      var piece = this.slice(a, b);
      if (covering.length) {
        var mark = document.createElement("mark");
        mark.className = "hl" + (covering.length > 1 ? " overlap" : "");
        mark.setAttribute("data-labels", covering.map(function (s) { return s.label; }).join(" "));
        mark.textContent = piece;
        this.container.appendChild(mark);
      } else {
        this.container.appendChild(document.createTextNode(piece));
      }
      this.spans.forEach(function (s) {
        if (s.end === b) {
          var tag = document.createElement("sup");
          tag.className = "tag";
          tag.setAttribute("data-label", s.label);  /* shown by CSS: not part of the text */
          self.container.appendChild(tag);
        }
      });
    }
    this.list.textContent = "";
    this.spans.forEach(function (s, index) {
      var li = document.createElement("li");
      li.className = "span";
      li.setAttribute("data-start", String(s.start));
      li.setAttribute("data-end", String(s.end));
      li.setAttribute("data-label", s.label);
      var code = document.createElement("code");
      code.textContent = s.start + "\u2013" + s.end;
      var label = document.createElement("strong");
      label.textContent = " " + s.label + " ";
      var quote = document.createElement("q");
      quote.textContent = self.slice(Math.min(s.start, n), Math.min(s.end, n));
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "remove quiet";
      remove.textContent = "remove";
      remove.addEventListener("click", function () { self.spans.splice(index, 1); self.render(); });
      li.appendChild(code); li.appendChild(label); li.appendChild(quote); li.appendChild(document.createTextNode(" ")); li.appendChild(remove);
      self.list.appendChild(li);
    });
    this.input.value = JSON.stringify(this.spans);
  };

  /* ------------------------------------------------------------ keys */
  function typing(target) {
    var tag = target && target.tagName;
    return tag === "TEXTAREA" || (tag === "INPUT" && !/^(radio|checkbox|button|submit)$/.test(target.type));
  }

  function submit(form) {
    if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
  }

  function setup() {
    var data = pageData();
    var form = document.getElementById("annotate");
    if (!data || !form) { return; }
    var widgets = [];
    all("fieldset.output", form).forEach(function (fieldset, i) {
      var output = data.outputs[i];
      if (output && output.task_type === "sequence_tagging") { widgets.push(new SpanWidget(fieldset, output)); }
    });
    var choiceSets = all("fieldset.output", form).filter(function (f) { return f.getAttribute("data-task") !== "sequence_tagging"; });
    var single = data.outputs.length === 1 && data.outputs[0].task_type === "classification";
    if (single) {
      all("input[type=radio]", form).forEach(function (radio) {
        radio.addEventListener("change", function () { submit(form); });
      });
    }
    document.addEventListener("keydown", function (e) {
      if (e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) { return; }
      if (/^[1-9]$/.test(e.key)) {
        var n = Number(e.key) - 1;
        for (var w = 0; w < widgets.length; w++) {
          if (widgets[w].selectionInside() || (!choiceSets.length && widgets.length === 1)) {
            var button = all("button.span-label", widgets[w].fieldset)[n];
            if (button) { widgets[w].add(button.getAttribute("data-label")); }
            e.preventDefault();
            return;
          }
        }
        if (choiceSets.length) {
          var box = all("input", choiceSets[0])[n];
          if (box) {
            e.preventDefault();
            if (box.type === "radio") { box.checked = true; } else { box.checked = !box.checked; }
            if (single) { submit(form); }
          }
        }
      } else if (e.key === "Enter") {
        if (e.target && (e.target.tagName === "BUTTON" || e.target.tagName === "A")) { return; }  /* its own action */
        e.preventDefault();
        submit(form);
      } else if (e.key === "s" || e.key === "S") {
        var skip = document.getElementById("skip");
        if (skip) { e.preventDefault(); skip.click(); }
      } else if (e.key === "u" || e.key === "U") {
        var undo = document.getElementById("undo");
        if (undo) { e.preventDefault(); undo.click(); }
      }
    });
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", setup); } else { setup(); }
}());
