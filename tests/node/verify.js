// Verifies one received webhook with the Standard Webhooks reference library.
// stdin: {"secret": "whsec_…", "body": "…", "headers": {"webhook-id": …, "webhook-timestamp": …, "webhook-signature": …},
//         "jsonParse": false for form and query messages (their bodies are not JSON)}
// stdout: the verified payload as JSON; exit code 1 with the library's error when verification fails.
const { Webhook } = require('standardwebhooks');

let input = '';
process.stdin.on('data', chunk => { input += chunk; });
process.stdin.on('end', () => {
  const { secret, body, headers, jsonParse } = JSON.parse(input);
  try {
    const payload = new Webhook(secret).verify(body, headers, { jsonParse: jsonParse !== false });
    process.stdout.write(JSON.stringify({ ok: true, payload }));
  } catch (error) {
    process.stdout.write(JSON.stringify({ ok: false, error: String(error && error.message || error) }));
    process.exitCode = 1;
  }
});
