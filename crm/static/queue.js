// The queue board: every 5 s, GET /api/v1/telephony/queue (the signed-in browser's session) and
// refresh the figures and the agents' table in place.
(function () {
  "use strict";
  var board = document.getElementById("queue-board");
  if (!board) { return; }
  var states = JSON.parse(board.getAttribute("data-states") || "{}");
  function fmt(key, value, percent) {
    if (value === null || value === undefined) { return "—"; }
    if (percent) { return (Math.round(value * 1000) / 10) + " %"; }
    if (key === "asa_s") { return String(Math.round(value * 10) / 10); }
    return String(Math.round(value));
  }
  function render(data) {
    document.querySelectorAll("[data-figure]").forEach(function (cell) {
      var key = cell.getAttribute("data-figure");
      if (!(key in data)) { return; }
      var text = fmt(key, data[key], cell.hasAttribute("data-percent"));
      var link = cell.querySelector("a");
      (link || cell).textContent = text;
    });
    var body = document.querySelector("#agents tbody");
    if (body && data.agents) {
      body.textContent = "";
      data.agents.forEach(function (a) {
        var tr = document.createElement("tr");
        tr.setAttribute("data-agent", a.user);
        [a.full_name || a.user, states[a.state] || a.state, String(a.answered), String(Math.round(a.talk_s / 6) / 10)].forEach(function (t) {
          var td = document.createElement("td"); td.textContent = t; tr.appendChild(td);
        });
        body.appendChild(tr);
      });
    }
    var alertBox = document.getElementById("surge");
    if (alertBox && "surge" in data) {
      var surge = data.surge;
      alertBox.hidden = !surge;
      document.getElementById("surge-text").textContent = surge ? surge.text : "";
      var list = document.getElementById("surge-incidents");
      list.textContent = "";
      (surge && surge.incidents || []).forEach(function (s) {
        var li = document.createElement("li");
        li.setAttribute("data-building", String(s.building_id));
        li.appendChild(document.createTextNode(s.text + " "));
        if (s.url) {
          var a = document.createElement("a"); a.href = s.url; a.textContent = s.link_text || s.url; li.appendChild(a);
        }
        list.appendChild(li);
      });
    }
    var stamp = document.getElementById("board-updated");
    if (stamp) { stamp.textContent = new Date().toLocaleTimeString("ru-RU"); }
  }
  function poll() {
    fetch(board.getAttribute("data-source"), {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) { render(data); } })
      .catch(function () {})
      .then(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 5000);
})();
