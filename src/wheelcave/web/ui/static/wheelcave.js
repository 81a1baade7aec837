// Copy buttons and the theme switch: the only script wheelcave's pages load (same origin, no inline code).
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      var label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  });
  var root = document.documentElement;
  var saved = null;
  try { saved = localStorage.getItem("wheelcave-theme"); } catch (e) { /* storage may be off */ }
  if (saved === "light" || saved === "dark") root.setAttribute("data-theme", saved);
  var toggle = document.getElementById("theme-toggle");
  if (toggle) {
    toggle.hidden = false;
    toggle.addEventListener("click", function () {
      var dark = root.getAttribute("data-theme") === "dark" ||
        (!root.getAttribute("data-theme") && window.matchMedia("(prefers-color-scheme: dark)").matches);
      var next = dark ? "light" : "dark";
      root.setAttribute("data-theme", next);
      try { localStorage.setItem("wheelcave-theme", next); } catch (e) { /* ignore */ }
    });
  }
})();
// Uploads: several files at once (chosen or dropped), each posted as its own upload.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form) return;
  var input = document.getElementById("upload-files");
  var select = document.getElementById("upload-index");
  var results = document.getElementById("upload-results");
  var zone = document.getElementById("dropzone");
  input.multiple = true;
  function target() { return form.getAttribute("data-root") + "upload/" + encodeURIComponent(select.value); }
  select.addEventListener("change", function () { form.action = target(); });
  zone.addEventListener("dragover", function (event) { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", function () { zone.classList.remove("over"); });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    zone.classList.remove("over");
    input.files = event.dataTransfer.files;
  });
  function say(text, ok) {
    var item = document.createElement("li");
    item.textContent = text;
    item.className = ok ? "" : "yanked";
    results.appendChild(item);
  }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var csrf = form.querySelector("input[name=csrf]").value;
    Array.prototype.reduce.call(input.files, function (previous, file) {
      return previous.then(function () {
        var body = new FormData();
        body.append("csrf", csrf);
        body.append("content", file, file.name);
        return fetch(target(), { method: "POST", body: body, headers: { "Accept": "application/json", "X-CSRF-Token": csrf },
                                 credentials: "same-origin" })
          .then(function (response) { return response.json(); })
          .then(function (answer) {
            say(answer.ok ? file.name + ": " + (answer.created ? "uploaded" : "already there") : file.name + ": " + answer.error,
                answer.ok);
          }, function () { say(file.name + ": the upload failed", false); });
      });
    }, Promise.resolve());
  });
})();
