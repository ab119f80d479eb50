// A real, unmodified `oidc-provider` (npm, v9) on 127.0.0.1 for authmount's end-to-end tests:
// OIDC Discovery and JWKS caching (tests/compat/oidc_provider_e2e.py) and the OIDC browser
// login (tests/compat/oidc_driver.py drives its login and consent forms).
//
//   node provider.mjs genkeys FILE [rsa|ec]          writes a private JWKS with one new key
//   node provider.mjs genkeys FILE rsa --keep OLD    the same, the keys of OLD after the new one
//   node provider.mjs serve PORT KEYFILE [--redirect-uri URI]... [--exit-with-stdin]
//                                                    serves issuer http://127.0.0.1:PORT
//                                                    (until stdin closes, with --exit-with-stdin)
//
// Only configuration and a few Koa middlewares are ours: one counts requests to the JWKS,
// discovery, token and userinfo paths (`GET /__stats`), one injects faults into token
// endpoint answers on request (`POST /__faults`, below). The first key of KEYFILE signs; all
// its keys are published at /jwks.
//
// Clients:
// * `e2e-client` / `e2e-secret`: only the client_credentials grant. Asking for
//   `resource=urn:authmount:e2e` (the default when no resource is sent) gets a JWT access
//   token (`typ: at+jwt`, alg of the first key) with `aud: "authmount-e2e"`, `sub` and
//   `client_id` = "e2e-client", valid for 15 minutes.
// * `authmount-interactive` / `interactive-secret` (client_secret_basic): a native
//   application (RFC 8252) with the authorization code grant (PKCE S256 required) and the
//   implicit `id_token` response type (for `response_mode=form_post`). Its redirect URIs are
//   loopback ones, so any port matches (RFC 8252 §7.3): `http://127.0.0.1/oidc/callback` and
//   `http://localhost/oidc/callback` (the CLIs' listeners), `http://127.0.0.1/v1/auth/<m>/oidc/callback`
//   for the mounts `oidc`, `jwt`, `team/oidc` (server-side callbacks), plus every
//   `--redirect-uri`.
// * `authmount-device` / `device-secret` (client_secret_post, as OpenBao's device mode sends
//   it): the device authorization grant (RFC 8628).
//
// Users: the development login form takes any login name (the password is ignored); the
// account's `sub` is the login. Claims by scope: `email` (email, email_verified), `profile`
// (name, preferred_username), `groups` (groups: ["dev", "login-<login>"], and "admins" for
// alice; the login `nogroups` has no groups claim). In the code flow these scope claims come
// from the userinfo endpoint (the ID token carries sub, nonce, auth_time, at_hash, ...); in
// the implicit id_token flow they are in the ID token.
//
// Faults (for bad-input tests; a real provider otherwise): `POST /__faults` with a JSON
// object sets what happens to the following token endpoint answers until the next
// `POST /__faults {}`:
//   {"id_token": "foreign_key"}  the ID token re-signed by a key the JWKS does not publish
//   {"id_token": "expired"}      exp and iat an hour in the past, re-signed by the real key
//   {"id_token": "wrong_nonce"}  nonce replaced, re-signed by the real key
//   {"id_token": "huge"}         a 2 MiB claim added, re-signed by the real key
//   {"id_token": "missing"}      no id_token in the answer
//   {"token_delay_ms": N}        the answer is delayed N ms
//   {"token_status": N}          the answer is replaced by status N with an error body
//   {"token_drop": true}         the connection is closed without an answer
// `GET /__faults` shows the current setting.
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import * as jose from 'jose';
import Provider, { errors } from 'oidc-provider';

export const CLIENT_ID = 'e2e-client';
export const CLIENT_SECRET = 'e2e-secret';
export const RESOURCE = 'urn:authmount:e2e';
export const AUDIENCE = 'authmount-e2e';
export const INTERACTIVE_ID = 'authmount-interactive';
export const INTERACTIVE_SECRET = 'interactive-secret';
export const DEVICE_ID = 'authmount-device';
export const DEVICE_SECRET = 'device-secret';

const DEFAULT_REDIRECTS = [
  'http://127.0.0.1/oidc/callback',
  'http://localhost/oidc/callback',
  'http://127.0.0.1/v1/auth/oidc/oidc/callback',
  'http://127.0.0.1/v1/auth/jwt/oidc/callback',
  'http://127.0.0.1/v1/auth/team/oidc/oidc/callback',
];

function usage() {
  process.stderr.write(
    'usage: node provider.mjs genkeys FILE [rsa|ec] [--keep OLDFILE]\n'
    + '       node provider.mjs serve PORT KEYFILE [--redirect-uri URI]... [--exit-with-stdin]\n',
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

/** The claims of the account `sub` (the dev login name). */
function accountClaims(sub) {
  const claims = {
    sub,
    email: `${sub}@example.test`,
    email_verified: true,
    name: sub,
    preferred_username: sub,
  };
  if (sub !== 'nogroups') {
    claims.groups = ['dev', `login-${sub}`, ...(sub === 'alice' ? ['admins'] : [])];
  }
  return claims;
}

/** Decodes a compact JWS payload (no verification: the provider just signed it). */
function payloadOf(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
}

async function serve(port, keyFile, extraRedirects) {
  const jwks = JSON.parse(readFileSync(keyFile, 'utf8'));
  const first = jwks.keys[0];
  const signingAlg = first.alg || (first.kty === 'EC' ? 'ES256' : 'RS256');
  const issuer = `http://127.0.0.1:${port}`;
  const realKey = await jose.importJWK(first, signingAlg);
  const foreign = await jose.generateKeyPair(signingAlg, { modulusLength: 2048 });

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
    }, {
      client_id: INTERACTIVE_ID,
      client_secret: INTERACTIVE_SECRET,
      application_type: 'native',
      grant_types: ['authorization_code', 'implicit'],
      response_types: ['code', 'id_token'],
      redirect_uris: [...DEFAULT_REDIRECTS, ...extraRedirects],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: signingAlg,
    }, {
      client_id: DEVICE_ID,
      client_secret: DEVICE_SECRET,
      grant_types: ['urn:ietf:params:oauth:grant-type:device_code'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_post',
      id_token_signed_response_alg: signingAlg,
    }],
    findAccount: async (_ctx, sub) => ({
      accountId: sub,
      claims: async () => accountClaims(sub),
    }),
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      groups: ['groups'],
    },
    scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // Only the client_credentials client gets a JWT access token for the e2e resource;
        // the interactive clients get opaque access tokens for the userinfo endpoint.
        defaultResource: async (ctx) => (ctx.oidc.client?.clientId === CLIENT_ID ? RESOURCE : undefined),
        useGrantedResource: async () => false,
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
  const stats = { jwks: 0, discovery: 0, token: 0, userinfo: 0, authorization: 0 };
  let faults = {};

  // Rewrites a successful token endpoint answer as `faults` asks.
  async function tamper(body) {
    const mode = faults.id_token;
    if (!mode || typeof body !== 'object' || !body.id_token) return body;
    if (mode === 'missing') {
      const { id_token: _dropped, ...rest } = body;
      return rest;
    }
    const claims = payloadOf(body.id_token);
    const now = Math.floor(Date.now() / 1000);
    let key = realKey;
    const header = { alg: signingAlg, kid: first.kid, typ: 'JWT' };
    if (mode === 'foreign_key') key = foreign.privateKey;
    else if (mode === 'expired') Object.assign(claims, { iat: now - 7200, exp: now - 3600 });
    else if (mode === 'wrong_nonce') claims.nonce = `n_${'X'.repeat(20)}`;
    else if (mode === 'huge') claims.padding = 'A'.repeat(2 * 1024 * 1024);
    else throw new Error(`unknown id_token fault ${mode}`);
    return { ...body, id_token: await new jose.SignJWT(claims).setProtectedHeader(header).sign(key) };
  }

  provider.use(async (ctx, next) => {
    if (ctx.path === '/__stats' && ctx.method === 'GET') {
      ctx.type = 'application/json';
      ctx.body = JSON.stringify(stats);
      return;
    }
    if (ctx.path === '/__faults') {
      if (ctx.method === 'POST') {
        const chunks = [];
        for await (const chunk of ctx.req) chunks.push(chunk);
        faults = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
        process.stdout.write(`faults: ${JSON.stringify(faults)}\n`);
      }
      ctx.type = 'application/json';
      ctx.body = JSON.stringify(faults);
      return;
    }
    if (ctx.path === '/jwks') stats.jwks += 1;
    else if (ctx.path === '/.well-known/openid-configuration') stats.discovery += 1;
    else if (ctx.path === '/me') stats.userinfo += 1;
    else if (ctx.path === '/auth') stats.authorization += 1;
    if (ctx.path !== '/token') {
      await next();
      return;
    }
    stats.token += 1;
    if (faults.token_delay_ms) await new Promise((r) => { setTimeout(r, faults.token_delay_ms); });
    if (faults.token_drop) {
      ctx.req.socket.destroy();
      ctx.respond = false;
      return;
    }
    if (faults.token_status) {
      ctx.status = faults.token_status;
      ctx.type = 'application/json';
      ctx.body = JSON.stringify({ error: 'server_error', error_description: 'injected fault' });
      return;
    }
    await next();
    if (ctx.status === 200 && ctx.body) {
      const parsed = typeof ctx.body === 'string' ? JSON.parse(ctx.body) : ctx.body;
      ctx.body = await tamper(parsed);
    }
  });
  const server = provider.listen(Number(port), '127.0.0.1', () => {
    process.stdout.write(`oidc-provider listening on ${issuer} (signing kid ${first.kid}, ${signingAlg})\n`);
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
} else if (cmd === 'serve' && args.length >= 2) {
  const redirects = [];
  for (let i = 2; i < args.length; i += 1) {
    if (args[i] === '--exit-with-stdin') {
      // The parent (a test process) holds our stdin: when it dies, so do we.
      process.stdin.on('end', () => process.exit(0));
      process.stdin.on('error', () => process.exit(0));
      process.stdin.resume();
    } else if (args[i] === '--redirect-uri' && args[i + 1]) {
      redirects.push(args[i + 1]);
      i += 1;
    } else {
      usage();
    }
  }
  await serve(args[0], args[1], redirects);
} else {
  usage();
}
