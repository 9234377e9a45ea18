// Live refresh, an enhancement only: every page works by reloading it. Parts of a page
// marked data-live-region are fetched again every data-live seconds and replaced when
// they changed. The request carries X-Akita-Live, so the server does not count it as use
// of the session (a console left open still ends after the idle timeout). Nothing is
// replaced while the person is typing in a form inside a region, or while the tab is
// hidden; when the session has ended, refreshing stops and the page says so.
(function () {
  "use strict";
  var main = document.getElementById("main");
  var period = main ? Number(main.dataset.live) : 0;
  var regions = document.querySelectorAll("[data-live-region][id]");
  if (!period || !regions.length || !window.fetch || !window.DOMParser) { return; }
  var status = document.getElementById("live-status");
  var busy = false;

  function editing(region) {
    var active = document.activeElement;
    return active && region.contains(active) && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName);
  }

  function say(text) { if (status) { status.textContent = text; } }

  function stamp() {
    var now = new Date();
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return pad(now.getHours()) + ":" + pad(now.getMinutes()) + ":" + pad(now.getSeconds());
  }

  function apply(html) {
    var fresh = new DOMParser().parseFromString(html, "text/html");
    var changed = 0;
    regions.forEach(function (region) {
      var next = fresh.getElementById(region.id);
      if (!next || editing(region) || next.innerHTML === region.innerHTML) { return; }
      region.innerHTML = next.innerHTML;
      changed += 1;
    });
    main.dataset.liveUpdated = String(Number(main.dataset.liveUpdated || 0) + changed);
    say("最終更新 " + stamp() + (changed ? "（内容が更新されました）" : ""));
  }

  function refresh() {
    if (busy || document.hidden) { return; }
    busy = true;
    fetch(window.location.href, {
      credentials: "same-origin",
      headers: { "X-Akita-Live": "1" },
      redirect: "manual"
    }).then(function (response) {
      if (response.type === "opaqueredirect" || response.status === 401) {
        window.clearInterval(timer);
        say("セッションが終了しました。再読み込みしてサインインしてください。");
        return null;
      }
      return response.ok ? response.text() : null;
    }).then(function (html) {
      if (html) { apply(html); }
    }).catch(function () {
      say("自動更新できませんでした（" + stamp() + "）。次の回に再試行します。");
    }).then(function () { busy = false; });
  }

  var timer = window.setInterval(refresh, period * 1000);
})();
