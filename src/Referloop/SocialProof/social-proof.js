/*
 * Referloop social-proof widget: shows recent purchases and sign-ups as rotating notifications.
 *
 *   <script src="https://referloop.example.com/js/social-proof.js" async
 *           data-campaign="cmp_…" data-key="pk_…"></script>
 *
 * Optional data attributes: data-api (base URL, default: where this script came from), data-limit (items, 20),
 * data-interval (ms between notifications, 8000), data-duration (ms each stays, 5000), data-position
 * ("bottom-left" or "bottom-right"), data-container (CSS selector to render into instead of a floating corner),
 * data-conversions-text (shown between items when a conversion hook counted at least 2 in the last week;
 * "{count}" is replaced; default "{count} people signed up this week"; "off" hides it).
 *
 * Everything from the feed is written with textContent and links are used only when they are http(s), so a name
 * or product such as "<script>…" shows as text and never runs.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) { return; }
  var data = script.dataset;
  var campaign = data.campaign;
  var key = data.key;
  if (!campaign || !key) {
    if (window.console) { console.warn("Referloop social proof: data-campaign and data-key are required."); }
    return;
  }
  var api = (data.api || new URL(script.src, document.baseURI).origin).replace(/\/+$/, "");
  var limit = Math.min(Math.max(parseInt(data.limit, 10) || 20, 1), 50);
  var interval = Math.max(parseInt(data.interval, 10) || 8000, 1000);
  var duration = Math.min(Math.max(parseInt(data.duration, 10) || 5000, 500), interval);
  var position = data.position === "bottom-right" ? "right" : "left";

  function isHttp(link) {
    if (typeof link !== "string") { return false; }
    try {
      var url = new URL(link);
      return url.protocol === "http:" || url.protocol === "https:";
    } catch (e) {
      return false;
    }
  }

  function ago(iso) {
    var seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    var steps = [[60, "minute"], [3600, "hour"], [86400, "day"], [604800, "week"], [2592000, "month"], [31536000, "year"]];
    if (!isFinite(seconds) || seconds < 60) { return "just now"; }
    var unit = steps[0];
    for (var i = 0; i < steps.length; i++) { if (seconds >= steps[i][0]) { unit = steps[i]; } }
    var count = Math.floor(seconds / unit[0]);
    return count + " " + unit[1] + (count === 1 ? "" : "s") + " ago";
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text) { node.textContent = text; }
    return node;
  }

  function who(item) {
    var name = [item.firstName || "Someone", item.lastInitial].filter(Boolean).join(" ");
    // "Miami, FL" beside a city; "Florida" alone says more than the country it is in.
    var region = item.stateCode || item.state;
    var place = item.city ? [item.city, region].filter(Boolean).join(", ") : item.state || region || item.country;
    return place ? name + " from " + place : name;
  }

  function render(item, attribution) {
    var product = item.product;
    var link = product && isHttp(product.link) ? product.link : null;
    var box = element(link ? "a" : "div", "rl-sp-notification");
    if (link) {
      box.href = link;
      box.rel = "noopener";
    }
    box.setAttribute("role", "status");
    box.style.cssText = "display:flex;gap:10px;align-items:center;max-width:320px;padding:10px 14px;" +
      "background:#fff;color:#222;border-radius:10px;box-shadow:0 4px 16px rgba(0,0,0,.18);" +
      "font:14px/1.35 system-ui,sans-serif;text-decoration:none;transition:opacity .4s;opacity:0";
    if (product && isHttp(product.image)) {
      var image = element("img", "rl-sp-image");
      image.src = product.image;
      image.alt = "";
      image.width = 48;
      image.height = 48;
      image.style.cssText = "width:48px;height:48px;object-fit:cover;border-radius:6px;flex:none";
      box.appendChild(image);
    }
    var text = element("div", "rl-sp-text");
    text.appendChild(element("div", "rl-sp-who", who(item)));
    text.appendChild(element("div", "rl-sp-what", product ? "bought " + product.name : "signed up"));
    var when = element("div", "rl-sp-when", ago(item.occurredAt));
    when.style.cssText = "color:#777;font-size:12px";
    text.appendChild(when);
    if (attribution && isHttp(attribution.url)) {
      var credit = element("a", "rl-sp-credit", attribution.text);
      credit.href = attribution.url;
      credit.rel = "noopener";
      credit.style.cssText = "color:#999;font-size:10px";
      text.appendChild(credit);
    }
    box.appendChild(text);
    return box;
  }

  function summary(count) {
    var box = element("div", "rl-sp-notification rl-sp-summary",
      (data.conversionsText || "{count} people signed up this week").replace("{count}", String(count)));
    box.setAttribute("role", "status");
    box.style.cssText = "max-width:320px;padding:10px 14px;background:#fff;color:#222;border-radius:10px;" +
      "box-shadow:0 4px 16px rgba(0,0,0,.18);font:14px/1.35 system-ui,sans-serif;transition:opacity .4s;opacity:0";
    return box;
  }

  function start(feed) {
    var items = ((feed && feed.data) || []).slice();
    var lastWeek = feed && feed.conversions ? feed.conversions.lastWeek : 0;
    if (lastWeek >= 2 && data.conversionsText !== "off") {
      items.push({ summary: lastWeek });
    }
    if (!items.length) { return; }
    var host = data.container ? document.querySelector(data.container) : null;
    if (!host) {
      host = element("div", "rl-sp-host");
      host.style.cssText = "position:fixed;bottom:20px;" + position + ":20px;z-index:2147483000";
      document.body.appendChild(host);
    }
    host.setAttribute("aria-live", "polite");
    var index = 0;
    function next() {
      var item = items[index % items.length];
      var box = item.summary ? summary(item.summary) : render(item, feed.attribution);
      index++;
      host.textContent = "";
      host.appendChild(box);
      requestAnimationFrame(function () { box.style.opacity = "1"; });
      setTimeout(function () { box.style.opacity = "0"; }, duration);
    }
    next();
    setInterval(next, interval);
  }

  var url = api + "/api/v1/campaigns/" + encodeURIComponent(campaign) + "/social-proof?limit=" + limit +
    "&key=" + encodeURIComponent(key);
  fetch(url, { credentials: "omit" })
    .then(function (response) { return response.ok ? response.json() : null; })
    .then(function (feed) {
      if (document.readyState === "loading") {
        document.addEventListener("DOMContentLoaded", function () { start(feed); });
      } else {
        start(feed);
      }
    })
    .catch(function () { /* the shop's page must never break because the feed is unreachable */ });
})();
