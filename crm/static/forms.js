// Form behaviour that the Content-Security-Policy (script-src 'self') forbids as inline handlers:
// - <form data-submit-once>: the submit button is disabled once the form is sent (no double submit);
// - <select data-autosubmit>: changing the value submits its form;
// - <form data-confirm="question">: the form is sent only after the user confirms the question.
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
  // a page restored from the back/forward cache gets its buttons back
  window.addEventListener('pageshow', function (e) {
    if (!e.persisted) return;
    document.querySelectorAll('form[data-submit-once] [disabled]').forEach(function (b) { b.disabled = false; });
  });
})();
