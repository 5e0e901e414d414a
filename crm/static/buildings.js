// The buildings register's autocomplete (crm/buildings): a [data-building-picker] block holds the
// address input and a listbox; typing asks GET /api/v1/buildings?q= (the signed-in session is
// enough) and lists the houses; arrows move, Enter or a click picks one, Escape closes. Picking
// fills the form's hidden building_id; typing again clears it. Without this script the typed
// address is matched on the server.
(function () {
  function setup(box) {
    var input = box.querySelector('input[type=text], input:not([type])');
    var list = box.querySelector('[role=listbox]');
    var form = box.closest('form');
    var hidden = form && form.querySelector('input[name=building_id]');
    if (!input || !list || !hidden) return;
    var items = [], active = -1, timer = null, seq = 0;

    function close() {
      list.hidden = true; list.innerHTML = ''; items = []; active = -1;
      input.setAttribute('aria-expanded', 'false');
      input.removeAttribute('aria-activedescendant');
    }
    function highlight(i) {
      var options = list.querySelectorAll('[role=option]');
      options.forEach(function (o, k) { o.setAttribute('aria-selected', k === i ? 'true' : 'false'); });
      active = i;
      if (options[i]) input.setAttribute('aria-activedescendant', options[i].id);
    }
    function pick(i) {
      if (!items[i]) return;
      input.value = items[i].address;
      hidden.value = String(items[i].id);
      hidden.dispatchEvent(new Event('change', {bubbles: true}));  // the intake's repeat check listens
      close();
    }
    function show(found) {
      list.innerHTML = ''; items = found; active = -1;
      found.forEach(function (b, i) {
        var li = document.createElement('li');
        li.id = 'building-option-' + i;
        li.setAttribute('role', 'option');
        li.textContent = b.address;
        li.addEventListener('mousedown', function (e) { e.preventDefault(); pick(i); });
        list.appendChild(li);
      });
      list.hidden = found.length === 0;
      input.setAttribute('aria-expanded', found.length ? 'true' : 'false');
    }
    function ask() {
      var q = input.value.trim();
      if (q.length < 2) { close(); return; }
      var mine = ++seq;
      fetch(box.getAttribute('data-api') + '?q=' + encodeURIComponent(q),
            {credentials: 'same-origin', headers: {'Accept': 'application/json'}})
        .then(function (r) { return r.ok ? r.json() : {items: []}; })
        .then(function (data) { if (mine === seq) show(data.items || []); })
        .catch(function () { close(); });  // free text still works: the server matches it
    }
    input.addEventListener('input', function () {
      hidden.value = '';
      clearTimeout(timer);
      timer = setTimeout(ask, 200);
    });
    input.addEventListener('keydown', function (e) {
      if (list.hidden) return;
      if (e.key === 'ArrowDown') { e.preventDefault(); highlight(Math.min(active + 1, items.length - 1)); }
      else if (e.key === 'ArrowUp') { e.preventDefault(); highlight(Math.max(active - 1, 0)); }
      else if (e.key === 'Enter' && active >= 0) { e.preventDefault(); pick(active); }
      else if (e.key === 'Escape') { e.preventDefault(); close(); }
    });
    input.addEventListener('blur', function () { setTimeout(close, 150); });
  }
  document.addEventListener('DOMContentLoaded', function () {
    document.querySelectorAll('[data-building-picker]').forEach(setup);
  });
})();
