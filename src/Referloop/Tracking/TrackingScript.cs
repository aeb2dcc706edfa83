namespace Referloop.Tracking;

/// <summary>
/// <c>GET /js/referloop.js</c>: the snippet a shop page embeds to report sign-ups and purchases with the click id:
/// <code>
/// &lt;script src="https://refer.shop.example/js/referloop.js" data-key="pk_…" async&gt;&lt;/script&gt;
/// referloop.purchase({ email, name, orderID: "ORD-1", purchaseValue: 120.5, currency: "USD" })
/// </code>
/// It keeps the <c>rl_click</c> and <c>ref</c> parameters of the landing URL in a first-party cookie on the shop's
/// domain for the attribution window, and sends them with every event.
/// </summary>
internal static class TrackingScript
{
    public static IEndpointRouteBuilder MapTrackingScript(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/js/referloop.js", (HttpContext http) =>
            {
                http.Response.Headers.CacheControl = "public, max-age=3600";
                return TypedResults.Text(Script, "text/javascript; charset=utf-8");
            })
            .WithTags("Events")
            .WithName("TrackingScript")
            .WithSummary("The browser snippet that reports sign-ups and purchases with the click id")
            .Produces<string>(contentType: "text/javascript");
        return routes;
    }

    public const string Script = """
        /* Referloop tracking snippet. <script src=".../js/referloop.js" data-key="pk_..." async></script> */
        (function (w, d) {
          "use strict";
          var script = d.currentScript || (function () {
            var all = d.querySelectorAll('script[src*="/js/referloop.js"]');
            return all[all.length - 1];
          })();
          var base = script.src.replace(/\/js\/referloop\.js(\?.*)?$/, "");
          var key = script.getAttribute("data-key");
          var days = parseInt(script.getAttribute("data-days") || "30", 10);

          function param(name) {
            var match = new RegExp("[?&]" + name + "=([^&#]*)").exec(w.location.search);
            return match ? decodeURIComponent(match[1].replace(/\+/g, " ")) : null;
          }
          function remember(name, value) {
            d.cookie = name + "=" + encodeURIComponent(value) + "; path=/; max-age=" + days * 86400 + "; samesite=lax";
            try { w.localStorage.setItem(name, value); } catch (e) { /* storage may be disabled */ }
          }
          function recall(name) {
            var match = new RegExp("(?:^|; )" + name + "=([^;]*)").exec(d.cookie);
            if (match) { return decodeURIComponent(match[1]); }
            try { return w.localStorage.getItem(name); } catch (e) { return null; }
          }

          var click = param("rl_click"), ref = param("ref");
          if (click) { remember("rl_click", click); }
          if (ref) { remember("rl_ref", ref); }

          function track(type, data) {
            data = data || {};
            var body = {
              type: type,
              email: data.email,
              name: data.name,
              orderId: data.orderID || data.orderId,
              purchaseValue: data.purchaseValue == null ? undefined : Number(data.purchaseValue),
              currency: data.currency,
              referralCode: data.referralCode || recall("rl_ref") || undefined,
              clickId: data.clickId || recall("rl_click") || undefined,
              occurredAt: data.occurredAt,
              properties: data.properties
            };
            var headers = { "Content-Type": "application/json", "X-Referloop-Key": key };
            if (data.idempotencyKey) { headers["Idempotency-Key"] = data.idempotencyKey; }
            return w.fetch(base + "/api/v1/events", {
              method: "POST", headers: headers, body: JSON.stringify(body), keepalive: true, credentials: "omit"
            }).then(function (response) { return response.json(); });
          }

          var api = {
            track: track,
            signup: function (data) { return track("signup", data); },
            purchase: function (data) { return track("purchase", data); },
            clickId: function () { return recall("rl_click"); }
          };
          // Calls made before the snippet loaded: window.referloop = window.referloop || { q: [] }; referloop.q.push(["purchase", {...}])
          var queued = (w.referloop && w.referloop.q) || [];
          w.referloop = api;
          for (var i = 0; i < queued.length; i++) { api[queued[i][0]].apply(null, queued[i].slice(1)); }
        })(window, document);
        """;
}
