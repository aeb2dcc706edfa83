// Verifies the v1a (Ed25519) signatures of one received webhook with Node's own crypto, knowing only the
// endpoint's public key (whpk_<base64 of the raw 32-byte key>).
// stdin: {"publicKey": "whpk_…", "body": "…", "headers": {"webhook-id": …, "webhook-timestamp": …, "webhook-signature": …}}
// stdout: {"ok": true, "verified": <how many v1a signatures verified>} or {"ok": false, "error": …} with exit code 1.
const crypto = require('node:crypto');

let input = '';
process.stdin.on('data', chunk => { input += chunk; });
process.stdin.on('end', () => {
  const { publicKey, body, headers } = JSON.parse(input);
  try {
    if (!publicKey.startsWith('whpk_')) throw new Error('not a whpk_ key');
    const raw = Buffer.from(publicKey.slice('whpk_'.length), 'base64');
    if (raw.length !== 32) throw new Error(`an Ed25519 public key has 32 bytes, this one ${raw.length}`);
    const key = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
    const content = Buffer.from(`${headers['webhook-id']}.${headers['webhook-timestamp']}.${body}`, 'utf8');
    const verified = headers['webhook-signature'].split(' ')
      .filter(s => s.startsWith('v1a,'))
      .filter(s => crypto.verify(null, content, key, Buffer.from(s.slice(4), 'base64')))
      .length;
    if (verified === 0) throw new Error('no v1a signature verifies with this key');
    process.stdout.write(JSON.stringify({ ok: true, verified }));
  } catch (error) {
    process.stdout.write(JSON.stringify({ ok: false, error: String(error && error.message || error) }));
    process.exitCode = 1;
  }
});
