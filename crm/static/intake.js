// The new-appeal form, keyboard first (issue 14, points 6 and 7):
// - [data-topic-picker]: typing filters the topic select's options by any word of their label
//   (arrows move, Enter picks and moves on to the category, Escape closes); the select stays the
//   form's field, so the form works without this script;
// - [data-repeat-api]: once a topic is chosen (and whenever the house changes) the open or recent
//   appeals on the same house and topic, or of the same citizen and topic, are asked for (debounced
//   POST, the CSRF token in a header; nothing personal in the URL) and listed; Alt+R links the new
//   appeal as a repeat of the first (or the chosen) one, Alt+A sends the form to attach this call to
//   it instead of opening another appeal;
// - Ctrl+Enter anywhere in the form sends it.
(function () {
  function norm(s) { return (s || '').toLowerCase().replace(/ё/g, 'е'); }

  function topicPicker(box, form) {
    var input = box.querySelector('input');
    var list = box.querySelector('[role=listbox]');
    var select = form.querySelector('select[name=topic]');
    var next = form.querySelector('select[name=category]');
    if (!input || !list || !select) return;
    var options = Array.prototype.slice.call(select.options).filter(function (o) { return o.value; });
    var shown = [], active = -1;
    function close() { list.hidden = true; list.innerHTML = ''; shown = []; active = -1; input.setAttribute('aria-expanded', 'false'); }
    function highlight(i) {
      active = i;
      list.querySelectorAll('[role=option]').forEach(function (li, k) { li.setAttribute('aria-selected', k === i ? 'true' : 'false'); });
      if (shown[i]) input.setAttribute('aria-activedescendant', 'topic-option-' + i);
    }
    function pick(i) {
      var o = shown[i];
      if (!o) return;
      select.value = o.value;
      input.value = o.text;
      close();
      select.dispatchEvent(new Event('change', {bubbles: true}));
      if (next && !next.value) next.focus();
    }
    input.addEventListener('input', function () {
      var words = norm(input.value).split(/\s+/).filter(Boolean);
      if (!words.length) { close(); return; }
      shown = options.filter(function (o) {
        var label = norm(o.text + ' ' + o.value);
        return words.every(function (w) { return label.indexOf(w) >= 0; });
      });
      list.innerHTML = '';
      shown.forEach(function (o, i) {
        var li = document.createElement('li');
        li.id = 'topic-option-' + i; li.setAttribute('role', 'option'); li.textContent = o.text;
        li.addEventListener('mousedown', function (e) { e.preventDefault(); pick(i); });
        list.appendChild(li);
      });
      list.hidden = !shown.length;
      input.setAttribute('aria-expanded', shown.length ? 'true' : 'false');
      highlight(shown.length ? 0 : -1);
    });
    input.addEventListener('keydown', function (e) {
      if (e.key === 'Enter') { e.preventDefault(); if (!list.hidden) pick(active >= 0 ? active : 0); return; }
      if (list.hidden) return;
      if (e.key === 'ArrowDown') { e.preventDefault(); highlight(Math.min(active + 1, shown.length - 1)); }
      else if (e.key === 'ArrowUp') { e.preventDefault(); highlight(Math.max(active - 1, 0)); }
      else if (e.key === 'Escape') { e.preventDefault(); close(); }
    });
    input.addEventListener('blur', function () { setTimeout(close, 150); });
  }

  function repeats(form) {
    var api = form.getAttribute('data-repeat-api');
    var box = document.getElementById('repeat-candidates');
    if (!api || !box) return;
    var list = box.querySelector('ol');
    var linked = document.getElementById('repeat-linked');
    var hidden = form.querySelector('input[name=repeat_of_id]');
    var topic = form.querySelector('select[name=topic]');
    var building = form.querySelector('input[name=building]');
    var buildingId = form.querySelector('input[name=building_id]');
    var token = form.querySelector('input[name=csrf_token]');
    var items = [], chosen = 0, timer = null, seq = 0;

    function mark() {
      list.querySelectorAll('li').forEach(function (li, k) { li.classList.toggle('chosen', k === chosen); });
      var picked = items.filter(function (c) { return c.id === hidden.value; })[0];
      linked.hidden = !picked;
      linked.textContent = picked ? linked.getAttribute('data-text').replace('NUMBER', picked.number) : '';
    }
    function link(i) {
      if (!items[i]) return;
      chosen = i;
      hidden.value = hidden.value === items[i].id ? '' : items[i].id;  // a second press unlinks
      mark();
    }
    function attach(i) {
      if (!items[i]) return;
      var target = form.querySelector('input[name=attach_to]') || document.createElement('input');
      target.type = 'hidden'; target.name = 'attach_to'; target.value = items[i].id;
      form.appendChild(target);
      form.setAttribute('action', form.getAttribute('data-attach-url'));
      form.submit();
    }
    function show(found) {
      items = found; chosen = 0; list.innerHTML = '';
      if (hidden.value && !found.some(function (c) { return c.id === hidden.value; })) hidden.value = '';
      found.forEach(function (c, i) {
        var li = document.createElement('li');
        li.setAttribute('data-appeal-id', c.id);
        var a = document.createElement('a');
        a.href = c.url; a.target = '_blank'; a.rel = 'noopener'; a.textContent = '№ ' + c.number;
        li.appendChild(a);
        var why = c.same_citizen ? box.getAttribute('data-same-citizen') : box.getAttribute('data-same-building');
        li.appendChild(document.createTextNode(' — ' + c.topic_label + ', ' + c.status_label + ', ' + c.created + ' (' + why + ') '));
        var b1 = document.createElement('button');
        b1.type = 'button'; b1.className = 'link'; b1.textContent = box.getAttribute('data-link-label');
        b1.addEventListener('click', function () { link(i); });
        var b2 = document.createElement('button');
        b2.type = 'button'; b2.className = 'link'; b2.textContent = box.getAttribute('data-attach-label');
        b2.addEventListener('click', function () { attach(i); });
        li.appendChild(b1); li.appendChild(document.createTextNode(' · ')); li.appendChild(b2);
        list.appendChild(li);
      });
      box.hidden = !found.length;
      mark();
    }
    function ask() {
      if (!topic.value) { show([]); return; }
      var mine = ++seq;
      fetch(api, {method: 'POST', credentials: 'same-origin',
                  headers: {'Content-Type': 'application/json', 'Accept': 'application/json',
                            'X-CSRFToken': token ? token.value : ''},
                  body: JSON.stringify({topic: topic.value, building_id: buildingId ? buildingId.value : '',
                                        address: building && !(buildingId && buildingId.value) ? building.value : ''})})
        .then(function (r) { return r.ok ? r.json() : {items: []}; })
        .then(function (data) { if (mine === seq) show(data.items || []); })
        .catch(function () {});
    }
    function later() { clearTimeout(timer); timer = setTimeout(ask, 300); }
    topic.addEventListener('change', later);
    if (building) building.addEventListener('input', later);
    if (building) building.addEventListener('change', later);
    if (buildingId) buildingId.addEventListener('change', later);
    form.addEventListener('keydown', function (e) {
      if (!e.altKey || box.hidden) return;
      var k = (e.key || '').toLowerCase();
      if (k === 'r' || k === 'к') { e.preventDefault(); link(chosen); }
      else if (k === 'a' || k === 'ф') { e.preventDefault(); attach(chosen); }
    });
    if (topic.value) later();
  }

  document.addEventListener('DOMContentLoaded', function () {
    document.querySelectorAll('form[data-intake]').forEach(function (form) {
      form.querySelectorAll('[data-topic-picker]').forEach(function (box) { topicPicker(box, form); });
      repeats(form);
      form.addEventListener('keydown', function (e) {
        if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); form.requestSubmit(); }
      });
    });
  });
})();
