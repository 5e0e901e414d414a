// Click a transcript line to seek the audio; the line being played is highlighted.
(function () {
  var player = document.getElementById('player');
  var list = document.getElementById('transcript');
  if (!player || !list) return;
  var items = Array.prototype.slice.call(list.querySelectorAll('li[data-start]'));
  function seek(li) {
    player.currentTime = parseFloat(li.dataset.start);
    var p = player.play(); if (p && p.catch) p.catch(function () {});
  }
  items.forEach(function (li) {
    li.addEventListener('click', function () { seek(li); });
    li.addEventListener('keydown', function (e) { if (e.key === 'Enter') seek(li); });
  });
  player.addEventListener('timeupdate', function () {
    var t = player.currentTime;
    items.forEach(function (li) {
      var on = t >= parseFloat(li.dataset.start) && t < parseFloat(li.dataset.end);
      li.classList.toggle('current', on);
    });
  });
})();
