// The pages carry no inline script or event handler (their content security policy forbids it): behaviour is
// declared with data attributes and wired here.

// <form data-confirm="question">: submits only when the question is answered OK.
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !confirm(form.dataset.confirm)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
});

// <select data-autosubmit>: choosing an option submits its form (a filter).
document.addEventListener("change", (event) => {
  const select = event.target.closest("select[data-autosubmit]");
  if (select) select.form.submit();
});

// Copy buttons: <button data-copy="input-id">
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const input = document.getElementById(button.dataset.copy);
  input.select();
  try { await navigator.clipboard.writeText(input.value); } catch { document.execCommand("copy"); }
  const label = button.textContent;
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = label; }, 1500);
});

// Webhooks: "send a test message" shows the receiver's answer without leaving the page, then follows the
// delivery (retries included) by polling its small JSON status endpoint.
const escapeHtml = (text) => String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

function renderTestResult(box, delivery, pageUrl) {
  const last = delivery.attempts[delivery.attempts.length - 1];
  const ok = delivery.status === "succeeded";
  box.className = "test-result " + (ok ? "ok" : delivery.status === "failed" ? "bad" : "");
  const answer = last ? (last.statusCode ?? "no answer") : "not sent yet";
  let html = `<p><span class="badge ${escapeHtml(delivery.status)}" data-test-status>${escapeHtml(delivery.status)}</span> ` +
    `<strong data-test-code>${escapeHtml(answer)}</strong>`;
  if (last) html += ` <span class="muted">in ${escapeHtml(last.latencyMs)} ms · attempt ${escapeHtml(last.number)}</span>`;
  html += `</p>`;
  if (last && last.error) html += `<p class="error-text">${escapeHtml(last.error)}</p>`;
  if (delivery.status === "pending" && delivery.nextAttemptAt) html += `<p class="muted">Next attempt at ${escapeHtml(delivery.nextAttemptAt)}.</p>`;
  if (last && last.responseExcerpt) html += `<pre class="code-block" tabindex="0" role="region" aria-label="Response body">${escapeHtml(last.responseExcerpt)}</pre>`;
  html += `<p><a href="${escapeHtml(pageUrl)}">Open the message and its attempt log</a></p>`;
  box.innerHTML = html;
  box.hidden = false;
}

document.addEventListener("submit", async (event) => {
  const form = event.target.closest("form[data-live-test]");
  if (!form) return;
  event.preventDefault();
  const box = document.getElementById("test-result");
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  box.className = "test-result";
  box.hidden = false;
  box.innerHTML = `<p class="muted">Sending…</p>`;
  try {
    const response = await fetch(form.action, { method: "POST", body: new FormData(form), headers: { Accept: "application/json" } });
    const answer = await response.json();
    if (!response.ok) {
      box.className = "test-result bad";
      box.innerHTML = `<p class="error-text">${escapeHtml(answer.error ?? "The test message was not sent.")}</p>`;
      return;
    }
    renderTestResult(box, answer.delivery, answer.page);
    let delivery = answer.delivery;
    const until = Date.now() + 120000;
    while (delivery.status === "pending" && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const poll = await fetch(answer.status, { headers: { Accept: "application/json" } });
      if (!poll.ok) break;
      delivery = await poll.json();
      renderTestResult(box, delivery, answer.page);
    }
    await refreshSection("messages");
  } catch {
    box.className = "test-result bad";
    box.innerHTML = `<p class="error-text">Could not reach the server.</p>`;
  } finally {
    button.disabled = false;
  }
});

// A message page follows its delivery: when an attempt is made (a replay, a retry) the page reloads to show it.
const live = document.querySelector("[data-live-delivery]");
if (live) {
  const attempts = Number(live.dataset.attempts);
  const status = live.dataset.status;
  const replayed = document.querySelector(".notice") !== null;
  if (status === "pending" || replayed) {
    const until = Date.now() + 120000;
    const poll = async () => {
      try {
        const response = await fetch(live.dataset.liveDelivery, { headers: { Accept: "application/json" } });
        if (response.ok) {
          const delivery = await response.json();
          if (delivery.attempts.length !== attempts || delivery.status !== status) {
            location.replace(location.pathname);
            return;
          }
        }
      } catch { /* try again below */ }
      if (Date.now() < until) setTimeout(poll, 1000);
    };
    setTimeout(poll, 500);
  }
}

// A select whose options carry data-help shows the chosen option's explanation in its help text.
document.addEventListener("change", (event) => {
  const select = event.target.closest("select[data-help-target]");
  if (!select) return;
  const help = document.getElementById(select.dataset.helpTarget);
  if (help) help.textContent = select.selectedOptions[0]?.dataset.help ?? "";
});

// Replaces a section of the page with its current server rendering (e.g. the message log after a test send).
async function refreshSection(id) {
  const current = document.getElementById(id);
  if (!current) return;
  const response = await fetch(location.href, { headers: { Accept: "text/html" } });
  if (!response.ok) return;
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html").getElementById(id);
  if (fresh) current.replaceWith(fresh);
}

// Campaign form: the hosted join page's preview follows the page fields as they are typed. The colour is set through
// the CSSOM (the policy forbids inline styles, not scripted ones); text on it is black or white, whichever reads better.
(() => {
  const preview = document.getElementById("page-preview");
  if (!preview) return;
  const luminance = (hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255)
    .map((c) => (c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4)))
    .reduce((sum, c, i) => sum + c * [0.2126, 0.7152, 0.0722][i], 0);
  const contrast = (a, b) => (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  const update = (field) => {
    const name = field.dataset.preview;
    const value = field.value.trim();
    if (name === "brandColor") {
      const color = /^#[0-9a-fA-F]{6}$/.test(value) ? value : preview.dataset.defaultColor;
      const l = luminance(color);
      preview.style.setProperty("--preview-brand", color);
      preview.style.setProperty("--preview-ink", contrast(l, 1) >= contrast(l, 0) ? "#ffffff" : "#000000");
      return;
    }
    for (const target of preview.querySelectorAll(`[data-preview-of="${name}"]`)) {
      target.textContent = value || target.dataset.empty;
    }
  };
  const fields = document.querySelectorAll("[data-preview]");
  fields.forEach(update);
  document.addEventListener("input", (event) => {
    const field = event.target.closest("[data-preview]");
    if (field) update(field);
  });
})();
