// Form behaviour that the Content-Security-Policy (script-src 'self') forbids as inline handlers:
// - <form data-submit-once>: the submit button is disabled once the form is sent (no double submit);
// - <select data-autosubmit>: changing the value submits its form;
// - <form data-confirm="question">: the form is sent only after the user confirms the question;
// - <input type=file>: a file over the upload limit is refused before it is sent, naming the limit.
(function () {
  // capture phase: runs before data-submit-once, so a cancelled submission leaves the buttons enabled
  document.addEventListener('submit', function (e) {
    var form = e.target;
    if (!form.hasAttribute || !form.hasAttribute('data-confirm')) return;
    if (!window.confirm(form.getAttribute('data-confirm'))) {
      e.preventDefault();
      e.stopImmediatePropagation();
    }
  }, true);
  document.addEventListener('submit', function (e) {
    var form = e.target;
    if (!form.hasAttribute || !form.hasAttribute('data-submit-once')) return;
    var buttons = form.querySelectorAll('button[type=submit], input[type=submit]');
    // disable after the submission has been taken, so the button's own value is still sent
    setTimeout(function () { buttons.forEach(function (b) { b.disabled = true; }); }, 0);
  });
  document.addEventListener('change', function (e) {
    var el = e.target;
    if (el.hasAttribute && el.hasAttribute('data-autosubmit') && el.form) el.form.submit();
  });
  // <input type=file>: a file over the server's limit (MAX_CONTENT_LENGTH, <body data-upload-max-bytes>) is
  // refused before anything is sent: the input is marked invalid (the form will not submit) and the
  // message naming the limit in MB is shown next to it; the rest of the form stays as typed
  function tooBig(el) {
    var max = parseInt(document.body.getAttribute('data-upload-max-bytes') || '0', 10);
    return max > 0 && Array.prototype.some.call(el.files || [], function (f) { return f.size > max; });
  }
  // capture phase, before data-submit-once: also for forms with novalidate (the browser's own check is off)
  document.addEventListener('submit', function (e) {
    var form = e.target;
    if (!form.querySelectorAll) return;
    var bad = Array.prototype.filter.call(form.querySelectorAll('input[type=file]'), tooBig)[0];
    if (!bad) return;
    e.preventDefault();
    e.stopImmediatePropagation();
    bad.dispatchEvent(new Event('change', { bubbles: true }));
    bad.focus();
  }, true);
  document.addEventListener('change', function (e) {
    var el = e.target;
    if (!el.matches || !el.matches('input[type=file]')) return;
    var big = tooBig(el);
    var text = big ? document.body.getAttribute('data-upload-too-large') : '';
    el.setCustomValidity(text);
    var note = el.parentNode.querySelector('.upload-too-large');
    if (big && !note) {
      note = document.createElement('span');
      note.className = 'flash error upload-too-large';
      note.setAttribute('role', 'alert');
      el.insertAdjacentElement('afterend', note);
    }
    if (note) { note.textContent = text; note.hidden = !big; }
  });
  // a page restored from the back/forward cache gets its buttons back
  window.addEventListener('pageshow', function (e) {
    if (!e.persisted) return;
    document.querySelectorAll('form[data-submit-once] [disabled]').forEach(function (b) { b.disabled = false; });
  });
})();
