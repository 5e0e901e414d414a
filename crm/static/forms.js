// Form behaviour that the Content-Security-Policy (script-src 'self') forbids as inline handlers:
// - <form data-submit-once>: the submit button is disabled once the form is sent (no double submit);
// - <select data-autosubmit>: changing the value submits its form.
(function () {
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
  // a page restored from the back/forward cache gets its buttons back
  window.addEventListener('pageshow', function (e) {
    if (!e.persisted) return;
    document.querySelectorAll('form[data-submit-once] [disabled]').forEach(function (b) { b.disabled = false; });
  });
})();
