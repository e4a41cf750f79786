// Clinic Teams: the little JavaScript the pages need besides htmx. No inline scripts (CSP).
(function () {
  "use strict";

  function announce(message) {
    var region = document.getElementById("announcer");
    if (!region || !message) return;
    region.textContent = "";
    // A fresh text node after a tick makes screen readers announce repeated messages too.
    window.setTimeout(function () { region.textContent = message; }, 50);
  }

  // The server names what to announce after an htmx swap: HX-Trigger: {"announce": "..."}.
  document.body.addEventListener("announce", function (event) {
    announce(event.detail && event.detail.value);
  });

  // A pager link is swapped away with its list: focus goes to what it names (data-focus)
  // instead of being lost to the page's start.
  document.body.addEventListener("htmx:afterSettle", function (event) {
    var link = event.detail.requestConfig && event.detail.requestConfig.elt;
    var selector = link && link.getAttribute && link.getAttribute("data-focus");
    var target = selector && document.querySelector(selector);
    if (!target) return;
    target.setAttribute("tabindex", "-1");
    target.focus();
  });

  document.body.addEventListener("htmx:sendError", function () {
    var flash = document.getElementById("flash");
    var message = document.documentElement.lang === "da"
      ? "Ingen forbindelse. Tjek dit netværk og prøv igen."
      : "No connection. Check your network and try again.";
    if (flash) flash.innerHTML = '<p class="flash flash-error" role="alert"></p>';
    if (flash) flash.firstChild.textContent = message;
    announce(message);
  });

  // Copy buttons: <button data-copy="#element-id">.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.value || source.textContent).then(function () {
      announce(button.getAttribute("data-copied") || "Copied");
    });
  });
})();
