// The screen pop (issue 16, point 2): every ~2 s, GET /telephony/pop (the signed-in session). When the
// PBX reports that this operator answered a call, the caller's card is fetched and shown; Enter (or
// the access key O) opens the intake prefilled with the caller; the hang-up clears the card. A card
// hidden or left for the intake stays a one-line bar on the next pages (showing it again is logged).
(function () {
  "use strict";
  var box = document.getElementById("screen-pop");
  if (!box) { return; }
  var source = box.getAttribute("data-source");
  var DONE = "crm-pop-done";
  var delay = 2000;
  var shown = null;   // the call id whose card is in the box
  var barFor = null;  // the call id whose bar is in the box
  var loading = null;

  function remember(callId) { try { window.sessionStorage.setItem(DONE, callId); } catch (e) { /* private mode */ } }
  function forget() { try { window.sessionStorage.removeItem(DONE); } catch (e) { /* private mode */ } }
  function isDone(callId) { try { return window.sessionStorage.getItem(DONE) === callId; } catch (e) { return false; } }

  function clear() {
    box.textContent = "";
    box.hidden = true;
    shown = barFor = null;
  }

  function bar(data) {
    if (barFor === data.call) { return; }
    clear();
    var p = document.createElement("p");
    p.className = "card pop-bar";
    p.id = "pop-bar";
    var b = document.createElement("button");
    b.type = "button";
    b.className = "link";
    b.textContent = box.getAttribute("data-bar");
    b.addEventListener("click", function () { forget(); show(data); });
    p.appendChild(b);
    box.appendChild(p);
    box.hidden = false;
    barFor = data.call;
  }

  function show(data) {
    if (loading === data.call) { return; }
    loading = data.call;
    fetch(data.card, {credentials: "same-origin", cache: "no-store", headers: {"Accept": "text/html"}})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        loading = null;
        if (html === null) { return; }
        clear();
        box.innerHTML = html;  // rendered and escaped by the server (templates/telephony/_pop.html)
        box.hidden = false;
        var section = document.getElementById("pop-card");
        shown = (section && section.getAttribute("data-call")) || data.call;  // the call may have changed since
        data = {call: shown, card: data.card};
        var close = document.getElementById("pop-close");
        if (close) { close.addEventListener("click", function () { remember(data.call); bar(data); }); }
        var intake = document.getElementById("pop-intake");
        if (intake) {
          intake.addEventListener("click", function () { remember(data.call); });
          // nothing typed yet (e.g. the search field's autofocus): Enter goes to the intake
          var active = document.activeElement;
          var tag = active && active.tagName ? active.tagName.toLowerCase() : "";
          if (!active || active === document.body || ((tag === "input" || tag === "textarea") && !active.value)) {
            intake.focus();
          }
        }
      })
      .catch(function () { loading = null; });
  }

  // Enter opens the intake while the card is shown, unless the operator is typing or on another control.
  document.addEventListener("keydown", function (e) {
    if (e.key !== "Enter" || !shown || e.altKey || e.ctrlKey || e.metaKey || e.shiftKey || e.isComposing) { return; }
    var t = e.target;
    var tag = t && t.tagName ? t.tagName.toLowerCase() : "";
    if (tag === "input" || tag === "textarea" || tag === "select" || tag === "button" || tag === "a" ||
        (t && t.isContentEditable)) { return; }
    var intake = document.getElementById("pop-intake");
    if (!intake) { return; }
    e.preventDefault();
    remember(shown);
    window.location.assign(intake.href);
  });

  function poll() {
    fetch(source, {credentials: "same-origin", cache: "no-store", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        if (data.poll_s) { delay = Math.max(1, Number(data.poll_s)) * 1000; }
        if (!data.call) {  // no call, or the hang-up
          if (shown || barFor) { clear(); }
          forget();
          return;
        }
        if (shown === data.call) { return; }
        if (isDone(data.call)) { bar(data); } else { show(data); }
      })
      .catch(function () { /* offline for a moment: the next poll tries again */ })
      .then(function () { window.setTimeout(poll, delay); });
  }
  poll();
})();
