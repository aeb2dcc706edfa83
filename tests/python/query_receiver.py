"""A receiver of `query`-format webhooks (GET, no body), standard library only, written as docs/webhooks.md shows:
the signed content is the query string exactly as it arrived on the request line, without its '?'. Answers 204, or
401 when the signature does not cover what arrived.
env: PORT, REFERLOOP_WEBHOOK_SECRET. Prints "Listening on port <PORT>" once it accepts requests."""
import base64
import hashlib
import hmac
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit

SECRET = os.environ["REFERLOOP_WEBHOOK_SECRET"]


def verify(secret: str, headers, content: bytes, tolerance: int = 300) -> bool:
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    if not msg_id or not timestamp or abs(time.time() - int(timestamp)) > tolerance:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + content
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        hmac.compare_digest(expected, sig.split(",", 1)[1])
        for sig in (headers["webhook-signature"] or "").split()
        if sig.startswith("v1,")
    )


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        query = urlsplit(self.path).query  # raw: not decoded, not re-ordered
        if not verify(SECRET, self.headers, query.encode()):
            self.send_response(401)
            self.end_headers()
            return
        params = parse_qs(query)  # only now read orderID, purchaseValue, …
        self.send_response(204)
        self.send_header("X-Order-Id", params.get("orderID", [""])[0])
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(os.environ["PORT"])
    server = HTTPServer(("127.0.0.1", port), Handler)
    print(f"Listening on port {port}", flush=True)
    sys.stdout.flush()
    server.serve_forever()
