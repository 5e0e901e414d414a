// QA page behaviour (no inline scripts, see call.js):
// - #note-add pins a comment at the player's current moment: it adds a row (time m:ss + text) to
//   #notes of the evaluation form, filled with the current time, and focuses its text;
// - [data-remove-row] removes its row; [data-add-row=<template id>] appends a copy of a <template>
//   (new criteria and sections in the scorecard editor).
(function () {
  'use strict';
  function fromTemplate(id) {
    var tpl = document.getElementById(id);
    var row = tpl ? tpl.content.querySelector('.row-item') : null;
    return row ? row.cloneNode(true) : null;
  }

  var add = document.getElementById('note-add');
  var notes = document.getElementById('notes');
  if (add && notes) {
    add.addEventListener('click', function (e) {
      e.preventDefault();
      var cp = window.crmCallPlayer;
      var t = cp ? cp.player.currentTime : 0;
      var empty = Array.prototype.slice.call(notes.querySelectorAll('.note-row')).filter(function (row) {
        return !row.querySelector('[name=note_text]').value.trim();
      })[0];
      var row = empty || fromTemplate('note-row');
      if (!row) return;
      if (!empty) notes.appendChild(row);
      row.querySelector('[name=note_at]').value = cp ? cp.fmt(t) : '0:00';
      var text = row.querySelector('[name=note_text]');
      text.focus();
    });
  }

  document.addEventListener('click', function (e) {
    var rm = e.target.closest && e.target.closest('[data-remove-row]');
    if (rm) {
      e.preventDefault();
      var row = rm.closest('.row-item');
      if (row) row.parentNode.removeChild(row);
      return;
    }
    var more = e.target.closest && e.target.closest('[data-add-row]');
    if (more) {
      e.preventDefault();
      var target = document.getElementById(more.dataset.target);
      var row2 = fromTemplate(more.dataset.addRow);
      if (target && row2) target.appendChild(row2);
    }
  });
})();
