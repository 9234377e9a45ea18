// Overview map: every device as a marker over 地理院タイル, coloured by state, with a text
// label on every device that is not normal. Runs only as an enhancement: the page lists
// the same devices as a table without JavaScript. With no tiles (offline, blocked) the
// markers still show on the grey background.
(function () {
  "use strict";
  var el = document.getElementById("map");
  if (!el || !window.L) { return; }
  var COLOURS = {
    danger: "#6b0015", alert: "#a4001d", offline: "#3d3d3d", unknown: "#767676", online: "#0b6e2e"
  };
  var RADIUS = { danger: 9, alert: 8, offline: 6, unknown: 5, online: 4 };
  var map = L.map(el, { preferCanvas: true, keyboard: true }).setView([39.72, 140.1], 11);
  map.attributionControl.setPrefix(false);
  if (el.dataset.tiles) {
    L.tileLayer(el.dataset.tiles, {
      maxZoom: 18,
      attribution: '<a href="https://maps.gsi.go.jp/development/ichiran.html">地理院タイル</a>'
    }).addTo(map);
  }
  if (el.dataset.point) {
    var p = el.dataset.point.split(",").map(Number);
    var pin = L.circleMarker(p, { radius: 9, color: "#ffffff", weight: 2, fillColor: "#a4001d", fillOpacity: 0.95 }).addTo(map);
    var tip = document.createElement("span");
    tip.className = "map-label";
    tip.textContent = "通報の場所 " + (el.dataset.pointLabel || "");
    pin.bindTooltip(tip, { permanent: true, direction: "right" });
    map.setView(p, 16);
    el.dataset.ready = "1";
    return;
  }
  fetch(el.dataset.src, { credentials: "same-origin" })
    .then(function (r) { return r.json(); })
    .then(function (data) {
      var bounds = [];
      data.markers.forEach(function (m) {
        var marker = L.circleMarker([m.lat, m.lon], {
          radius: RADIUS[m.state] || 5,
          color: "#ffffff",
          weight: m.state === "online" ? 1 : 2,
          fillColor: COLOURS[m.state] || "#767676",
          fillOpacity: 0.95
        }).addTo(map);
        var text = m.label + " " + m.id + (m.site ? "（" + m.site + "）" : "");
        // text content, never HTML: names come from the registry
        var span = document.createElement("span");
        span.className = "map-label";
        span.textContent = text;
        marker.bindTooltip(span, {
          permanent: m.state !== "online", direction: "right", className: "map-tip-" + m.state
        });
        marker.on("click", function () {
          window.location.href = el.dataset.deviceUrl + encodeURIComponent(m.id);
        });
        if (m.state !== "online") { bounds.push([m.lat, m.lon]); }
      });
      if (bounds.length) { map.fitBounds(bounds, { maxZoom: 14, padding: [40, 40] }); }
      el.dataset.ready = String(data.markers.length);
    });
}());
