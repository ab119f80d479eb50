// A real, unmodified `oidc-provider` (npm, v9) on 127.0.0.1 for authmount's OIDC Discovery
// end-to-end test (tests/compat/oidc_provider_e2e.py).
//
//   node provider.mjs genkeys FILE [rsa|ec]          writes a private JWKS with one new key
//   node provider.mjs genkeys FILE rsa --keep OLD    the same, the keys of OLD after the new one
//   node provider.mjs serve PORT KEYFILE             serves issuer http://127.0.0.1:PORT
//
// Only configuration and two Koa middlewares are ours: one counts requests to the JWKS and
// discovery paths, the other answers `GET /__stats` with {"jwks": N, "discovery": M, ...}.
// The first key of KEYFILE signs; all its keys are published at /jwks.
//
// The client `e2e-client` / `e2e-secret` has only the client_credentials grant. Asking for
// `resource=urn:authmount:e2e` (the default when no resource is sent) gets a JWT access token
// (`typ: at+jwt`, alg of the first key) with `aud: "authmount-e2e"`, `sub` and `client_id`
// = "e2e-client", valid for 15 minutes.
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import * as jose from 'jose';
import Provider, { errors } from 'oidc-provider';

export const CLIENT_ID = 'e2e-client';
export const CLIENT_SECRET = 'e2e-secret';
export const RESOURCE = 'urn:authmount:e2e';
export const AUDIENCE = 'authmount-e2e';

function usage() {
  process.stderr.write(
    'usage: node provider.mjs genkeys FILE [rsa|ec] [--keep OLDFILE]\n'
    + '       node provider.mjs serve PORT KEYFILE\n',
  );
  process.exit(2);
}

async function genkeys(file, kind = 'rsa', keep = undefined) {
  const alg = kind === 'ec' ? 'ES256' : kind === 'rsa' ? 'RS256' : usage();
  const { privateKey } = await jose.generateKeyPair(alg, { extractable: true, modulusLength: 2048 });
  const jwk = await jose.exportJWK(privateKey);
  Object.assign(jwk, { kid: `e2e-${randomUUID()}`, alg, use: 'sig' });
  const keys = [jwk];
  if (keep) keys.push(...JSON.parse(readFileSync(keep, 'utf8')).keys);
  writeFileSync(file, `${JSON.stringify({ keys }, null, 2)}\n`, { mode: 0o600 });
  process.stdout.write(`${jwk.kid}\n`);
}

function serve(port, keyFile) {
  const jwks = JSON.parse(readFileSync(keyFile, 'utf8'));
  const signingAlg = jwks.keys[0].alg || (jwks.keys[0].kty === 'EC' ? 'ES256' : 'RS256');
  const issuer = `http://127.0.0.1:${port}`;

  const configuration = {
    jwks,
    clients: [{
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: signingAlg, // the default, RS256, needs an RSA key
    }],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => RESOURCE,
        getResourceServerInfo: async (_ctx, resourceIndicator) => {
          if (resourceIndicator !== RESOURCE) throw new errors.InvalidTarget();
          return {
            scope: 'e2e',
            audience: AUDIENCE,
            accessTokenTTL: 15 * 60,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: signingAlg } },
          };
        },
      },
    },
    ttl: { ClientCredentials: 15 * 60 },
    cookies: { keys: ['authmount-e2e-cookie-key'] },
  };

  const provider = new Provider(issuer, configuration);
  const stats = { jwks: 0, discovery: 0, token: 0 };
  provider.use(async (ctx, next) => {
    if (ctx.method === 'GET' && ctx.path === '/__stats') {
      ctx.type = 'application/json';
      ctx.body = JSON.stringify(stats);
      return;
    }
    if (ctx.path === '/jwks') stats.jwks += 1;
    else if (ctx.path === '/.well-known/openid-configuration') stats.discovery += 1;
    else if (ctx.path === '/token') stats.token += 1;
    await next();
  });
  const server = provider.listen(Number(port), '127.0.0.1', () => {
    process.stdout.write(`oidc-provider listening on ${issuer} (signing kid ${jwks.keys[0].kid}, ${signingAlg})\n`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === 'genkeys' && args.length >= 1) {
  const keepAt = args.indexOf('--keep');
  const keep = keepAt >= 0 ? args[keepAt + 1] : undefined;
  const rest = keepAt >= 0 ? args.filter((_, i) => i !== keepAt && i !== keepAt + 1) : args;
  await genkeys(rest[0], rest[1], keep);
} else if (cmd === 'serve' && args.length === 2) {
  serve(args[0], args[1]);
} else {
  usage();
}
