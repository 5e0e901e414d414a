// The call player in step with its transcript (call page and QA review page). No inline scripts:
// the Content-Security-Policy allows scripts from 'self' only.
//
// - click a transcript line (or press Enter on it), a doubtful word in it, a pinned comment or a check
//   hint with data-seek: the audio jumps there (a word: to the word itself) and plays;
// - the line being played is highlighted (class "current") and kept in view inside the list;
// - #t=12.5 (or ?t=12.5) in the address seeks to 12.5 s once the audio is loaded (links from an
//   evaluation, hits of the transcript search);
// - keyboard (not while typing in a field): Space or K play/pause, ← or J back 5 s, → or L
//   forward 5 s, N next call in the queue (#next-call), M pin a comment at the current moment.
(function () {
  'use strict';
  var player = document.getElementById('player');
  if (!player) return;
  var SKIP_S = 5;
  var list = document.getElementById('transcript');
  var items = list ? Array.prototype.slice.call(list.querySelectorAll('li[data-start]')) : [];
  var starts = items.map(function (li) { return parseFloat(li.dataset.start); });
  var ends = items.map(function (li) { return parseFloat(li.dataset.end); });
  var current = -1;

  function play() { var p = player.play(); if (p && p.catch) p.catch(function () {}); }

  function seekTo(seconds, andPlay) {
    var t = Math.max(0, seconds);
    if (isFinite(player.duration)) t = Math.min(t, player.duration);
    player.currentTime = t;
    highlight();
    if (andPlay) play();
  }

  function lineAt(t) {
    for (var i = 0; i < items.length; i++) { if (t >= starts[i] && t < ends[i]) return i; }
    return -1;
  }

  function keepInView(li) {
    if (!list || list.scrollHeight <= list.clientHeight) return;
    var top = li.offsetTop - list.offsetTop, bottom = top + li.offsetHeight;
    if (top < list.scrollTop) list.scrollTop = top;
    else if (bottom > list.scrollTop + list.clientHeight) list.scrollTop = bottom - list.clientHeight;
  }

  function highlight() {
    var i = lineAt(player.currentTime);
    if (i === current) return;
    if (current >= 0) { items[current].classList.remove('current'); items[current].removeAttribute('aria-current'); }
    current = i;
    if (i >= 0) { items[i].classList.add('current'); items[i].setAttribute('aria-current', 'true'); keepInView(items[i]); }
    var clock = document.getElementById('player-time');
    if (clock) clock.textContent = fmt(player.currentTime);
  }

  function fmt(s) {
    s = Math.max(0, Math.floor(s || 0));
    var sec = s % 60;
    return Math.floor(s / 60) + ':' + (sec < 10 ? '0' : '') + sec;
  }
  window.crmCallPlayer = {player: player, fmt: fmt, seekTo: seekTo};

  // the innermost element of a click or a key press that says where to seek: a word (data-seek) before
  // its line (data-start)
  function seekTarget(target) {
    return target && target.closest ? target.closest('[data-seek], #transcript li[data-start]') : null;
  }
  function seekOf(el) { return parseFloat(el.dataset.seek !== undefined ? el.dataset.seek : el.dataset.start); }

  document.addEventListener('click', function (e) {
    var el = seekTarget(e.target);
    if (!el || (e.target.closest('a[href]') && !e.target.closest('a[data-seek]'))) return;
    if (el.tagName === 'A') e.preventDefault();
    seekTo(seekOf(el), true);
  });
  // Enter on a focused line, or on a focused doubtful word inside it, seeks as a click does: to the
  // word's own time, not to its line's start (a link or a button gets its own click from Enter)
  document.addEventListener('keydown', function (e) {
    if (e.key !== 'Enter' || e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented || typing(e.target)) return;
    var el = seekTarget(e.target);
    if (!el || el.tagName === 'A' || el.tagName === 'BUTTON') return;
    e.preventDefault();
    seekTo(seekOf(el), true);
  });
  ['timeupdate', 'seeked', 'play'].forEach(function (ev) { player.addEventListener(ev, highlight); });

  function toggle() { if (player.paused) play(); else player.pause(); }
  document.querySelectorAll('[data-player]').forEach(function (b) {
    b.addEventListener('click', function (e) {
      e.preventDefault();
      var act = b.dataset.player;
      if (act === 'toggle') toggle();
      else seekTo(player.currentTime + parseFloat(act), false);
    });
  });
  var rate = document.getElementById('player-rate');
  if (rate) rate.addEventListener('change', function () { player.playbackRate = parseFloat(rate.value) || 1; });
  function playState() {
    var b = document.querySelector('[data-player=toggle]');
    if (b) b.textContent = player.paused ? '▶ Пуск' : '❚❚ Пауза';
  }
  player.addEventListener('play', playState);
  player.addEventListener('pause', playState);

  function typing(el) {
    if (!el || el === document.body) return false;
    if (el.isContentEditable) return true;
    var tag = el.tagName;
    if (tag === 'TEXTAREA' || tag === 'SELECT') return true;
    if (tag === 'INPUT') return ['radio', 'checkbox', 'button', 'submit', 'reset'].indexOf(el.type) < 0;
    return false;
  }

  document.addEventListener('keydown', function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented || typing(e.target)) return;
    var tag = e.target && e.target.tagName;
    var onControl = tag === 'BUTTON' || tag === 'A' || tag === 'AUDIO' || (tag === 'INPUT');
    var key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    var handled = true;
    if ((key === ' ' && !onControl) || key === 'k' || key === 'л') toggle();
    else if ((key === 'ArrowLeft' && tag !== 'INPUT') || key === 'j' || key === 'о') seekTo(player.currentTime - SKIP_S, false);
    else if ((key === 'ArrowRight' && tag !== 'INPUT') || key === 'l' || key === 'д') seekTo(player.currentTime + SKIP_S, false);
    else if (key === 'n' || key === 'т') {
      var next = document.getElementById('next-call');
      if (next && next.href) window.location.assign(next.href); else handled = false;
    } else if (key === 'm' || key === 'ь') {
      var add = document.getElementById('note-add');
      if (add) add.click(); else handled = false;
    } else handled = false;
    if (handled) e.preventDefault();
  });

  var m = /(?:^#|&)t=(\d+(?:\.\d+)?)/.exec(window.location.hash) ||
    /(?:^\?|&)t=(\d+(?:\.\d+)?)/.exec(window.location.search);
  if (m) {
    var at = parseFloat(m[1]);
    if (player.readyState >= 1) seekTo(at, false);
    else {
      // nothing loaded yet (browsers may defer even preload="metadata"): setting currentTime now
      // sets the default playback start position (HTML spec), so the line is marked at once and
      // playback starts there; seek again once the duration is known, to clamp it
      player.currentTime = at;
      highlight();
      player.addEventListener('loadedmetadata', function once() {
        player.removeEventListener('loadedmetadata', once); seekTo(at, false);
      });
    }
  }
})();
