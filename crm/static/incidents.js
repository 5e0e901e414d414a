// The intake's incident banner (crm/incidents, issue 15 point 1): when the operator picks the caller's
// house from the register (the hidden building_id changes), the house's active incidents are asked for
// (GET with the register's id only: no address in the URL) and shown above the form with the text to
// read to the caller, before anything is typed. A checkbox opens the appeal linked to the incident;
// «Добавить звонок к инциденту» (Alt+I) sends the form to count this call on the incident instead of
// opening an appeal. Typing another address hides the banner until a house is picked again.
(function () {
  function setup(form) {
    var box = document.getElementById('incident-banner');
    var hidden = form.querySelector('input[name=building_id]');
    var building = form.querySelector('input[name=building]');
    var topic = form.querySelector('select[name=topic]');
    if (!box || !hidden) return;
    var list = box.querySelector('ol');
    var seq = 0;

    function attach(url) {
      form.setAttribute('action', url);
      form.submit();
    }
    function wire() {
      list.querySelectorAll('input[name=incident_id]').forEach(function (cb) {
        cb.addEventListener('change', function () {
          if (!cb.checked) return;
          list.querySelectorAll('input[name=incident_id]').forEach(function (o) { if (o !== cb) o.checked = false; });
          var li = cb.closest('li');
          if (topic && !topic.value && li) {
            topic.value = li.getAttribute('data-topic');
            topic.dispatchEvent(new Event('change', {bubbles: true}));
          }
        });
      });
      list.querySelectorAll('[data-attach-incident]').forEach(function (b) {
        b.addEventListener('click', function () { attach(b.getAttribute('data-attach-incident')); });
      });
    }
    function show(items) {
      list.innerHTML = '';
      items.forEach(function (i) {
        var li = document.createElement('li');
        li.setAttribute('data-incident-id', i.id);
        li.setAttribute('data-topic', i.topic);
        var title = document.createElement('strong');
        title.textContent = box.getAttribute('data-title').replace('ID', i.id);
        li.appendChild(title);
        li.appendChild(document.createTextNode(' · ' + i.topic_label + ' · ' + i.kind_label + ' · ' + i.starts +
                                               (i.ends ? ' — ' + i.ends : '')));
        var text = document.createElement('blockquote');
        text.className = 'incident-text';
        text.textContent = i.text;
        li.appendChild(text);
        var label = document.createElement('label');
        var cb = document.createElement('input');
        cb.type = 'checkbox'; cb.name = 'incident_id'; cb.value = String(i.id);
        label.appendChild(cb);
        label.appendChild(document.createTextNode(' ' + box.getAttribute('data-link-label')));
        li.appendChild(label);
        var b = document.createElement('button');
        b.type = 'button'; b.className = 'link'; b.textContent = box.getAttribute('data-attach-label');
        b.setAttribute('data-attach-incident', box.getAttribute('data-attach-url').replace(/\/0\/attach$/, '/' + i.id + '/attach'));
        li.appendChild(b);
        list.appendChild(li);
      });
      box.hidden = !items.length;
      wire();
    }
    function ask() {
      var id = hidden.value;
      if (!/^\d+$/.test(id)) { show([]); return; }
      var mine = ++seq;
      fetch(box.getAttribute('data-url') + '?building_id=' + encodeURIComponent(id),
            {credentials: 'same-origin', headers: {'Accept': 'application/json'}})
        .then(function (r) { return r.ok ? r.json() : {items: []}; })
        .then(function (data) { if (mine === seq) show(data.items || []); })
        .catch(function () {});
    }
    hidden.addEventListener('change', ask);
    if (building) building.addEventListener('input', function () { seq++; show([]); });
    form.addEventListener('keydown', function (e) {
      if (!e.altKey || box.hidden) return;
      var k = (e.key || '').toLowerCase();
      if (k === 'i' || k === 'ш') {
        var first = list.querySelector('[data-attach-incident]');
        if (first) { e.preventDefault(); attach(first.getAttribute('data-attach-incident')); }
      }
    });
    wire();
  }
  document.addEventListener('DOMContentLoaded', function () {
    document.querySelectorAll('form[data-intake]').forEach(setup);
  });
})();
