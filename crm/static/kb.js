// The knowledge-base panel beside the intake form (crm/kb): when the operator chooses a topic, or
// picks the caller's house, the panel is asked for the topic's call script and articles and the
// house's hints (GET /kb/panel?topic=…&building_id=…: a topic code and a register id, nothing
// personal) and shows them. Answers that arrive out of order are dropped.
(function () {
  function start(panel) {
    var url = panel.getAttribute('data-url');
    var target = panel.querySelector('[data-kb-content]');
    var form = document.getElementById(panel.getAttribute('data-form') || 'appeal-form');
    if (!url || !target || !form) return;
    var topic = form.querySelector('select[name=topic]');
    var buildingId = form.querySelector('input[name=building_id]');
    var building = form.querySelector('input[name=building]');
    var seq = 0, timer = null, shown = null;

    function load() {
      var t = topic ? topic.value : '';
      var b = buildingId ? buildingId.value : '';
      var key = t + '|' + b;
      if (key === shown) return;
      var mine = ++seq;
      fetch(url + '?topic=' + encodeURIComponent(t) + '&building_id=' + encodeURIComponent(b),
            {credentials: 'same-origin', headers: {'Accept': 'text/html'}})
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          if (mine !== seq) return;
          target.innerHTML = html;
          shown = key;
          panel.setAttribute('data-topic', t);
        })
        .catch(function () { /* the panel is a help: the form works without it */ });
    }
    function later() { clearTimeout(timer); timer = setTimeout(load, 150); }

    if (topic) topic.addEventListener('change', load);
    if (buildingId) buildingId.addEventListener('change', load);
    if (building) building.addEventListener('input', later);
    if ((topic && topic.value) || (buildingId && buildingId.value)) load();
  }
  document.addEventListener('DOMContentLoaded', function () {
    document.querySelectorAll('[data-kb-panel]').forEach(start);
  });
})();
