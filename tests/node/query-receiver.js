// A receiver of `query`-format webhooks (GET, no body), written as docs/webhooks.md shows: the signed content is the
// query string exactly as it arrived on the request line, without its '?'. Verifies with the Standard Webhooks
// reference library and answers 204, or 401 when the signature does not cover what arrived.
// env: PORT, REFERLOOP_WEBHOOK_SECRET. Prints "Listening on port <PORT>" once it accepts requests.
const http = require('node:http');
const { Webhook } = require('standardwebhooks');

const webhook = new Webhook(process.env.REFERLOOP_WEBHOOK_SECRET);

http.createServer((req, res) => {
  const i = req.url.indexOf('?');
  const query = i < 0 ? '' : req.url.slice(i + 1); // raw: not decoded, not re-ordered
  try {
    webhook.verify(query, req.headers, { jsonParse: false });
    const params = new URLSearchParams(query);   // only now read orderID, purchaseValue, …
    res.writeHead(204, { 'X-Order-Id': params.get('orderID') ?? '' }).end();
  } catch (error) {
    res.writeHead(401).end(String(error && error.message || error));
  }
}).listen(Number(process.env.PORT), '127.0.0.1', () => console.log(`Listening on port ${process.env.PORT}`));
