// Times are stored and sent in UTC; show every <time data-local> in the viewer's own time zone, and fill
// hidden `viewer_tz` inputs so times typed into forms are read in that zone too.
(function () {
  "use strict";
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  var format = new Intl.DateTimeFormat(undefined, {
    weekday: "short", year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
    timeZoneName: "short",
  });
  document.querySelectorAll("time[data-local]").forEach(function (el) {
    var when = new Date(el.getAttribute("datetime"));
    if (!isNaN(when)) {
      el.textContent = format.format(when);
      el.title = el.getAttribute("datetime");
    }
  });
  document.querySelectorAll("input[name=viewer_tz]").forEach(function (el) { el.value = zone; });
  document.querySelectorAll(".viewer-tz").forEach(function (el) { el.textContent = zone; });
  // <input type=datetime-local data-utc="...Z">: prefill with that instant in the viewer's zone.
  document.querySelectorAll("input[type=datetime-local][data-utc]").forEach(function (el) {
    var when = new Date(el.getAttribute("data-utc"));
    if (isNaN(when)) { return; }
    var local = new Date(when.getTime() - when.getTimezoneOffset() * 60000);
    el.value = local.toISOString().slice(0, 16);
  });
})();
