// node-vault (npm, unmodified) against a Vault-compatible server: enables the JWT method at
// a custom nested mount, configures it, writes a role, logs in with a real signed JWT, looks
// the token up, lists accessors, revokes it, and checks that a bad JWT is a 400.
//
// Run by tests/compat/real_clients.py, which mints the key and the JWT. Environment:
//   VAULT_ADDR, ROOT_TOKEN, MOUNT (e.g. node/jwt), PUBKEY_PEM, JWT, ISSUER, AUDIENCE
// Prints one JSON line per check: {"check": "node-vault.<name>", "ok": true|false, "detail": "..."}.
'use strict';

const vault = require('node-vault');

const env = (name) => {
    const value = process.env[name];
    if (!value) throw new Error(`${name} is not set`);
    return value;
};

const endpoint = env('VAULT_ADDR');
const mount = env('MOUNT');
const admin = vault({ apiVersion: 'v1', endpoint, token: env('ROOT_TOKEN') });
const client = vault({ apiVersion: 'v1', endpoint });
let failures = 0;

async function check(name, step) {
    try {
        const detail = await step();
        console.log(JSON.stringify({ check: `node-vault.${name}`, ok: true, detail: detail || '' }));
    } catch (e) {
        failures += 1;
        const status = e.response ? ` (HTTP ${e.response.statusCode}: ${JSON.stringify(e.response.body)})` : '';
        console.log(JSON.stringify({ check: `node-vault.${name}`, ok: false, detail: `${e.message}${status}` }));
    }
}

function expect(condition, message) {
    if (!condition) throw new Error(message);
}

(async () => {
    let accessor = '';
    await check('enable-auth', async () => {
        await admin.enableAuth({ mount_point: mount, type: 'jwt', description: 'node-vault' });
        const auths = await admin.auths();
        expect(auths.data[`${mount}/`] && auths.data[`${mount}/`].type === 'jwt', `no jwt mount at ${mount}/`);
    });
    await check('write-config', async () => {
        await admin.write(`auth/${mount}/config`, {
            jwt_validation_pubkeys: [env('PUBKEY_PEM')],
            bound_issuer: env('ISSUER'),
        });
    });
    await check('write-role', async () => {
        await admin.write(`auth/${mount}/role/demo`, {
            role_type: 'jwt',
            user_claim: 'https://vault/user',
            bound_audiences: [env('AUDIENCE')],
            token_policies: ['webapps'],
            token_ttl: '1h',
        });
        const role = await admin.read(`auth/${mount}/role/demo`);
        expect(role.data.role_type === 'jwt', `role_type ${role.data.role_type}`);
        expect(role.data.token_ttl === 3600, `token_ttl ${role.data.token_ttl}`);
    });
    await check('jwt-login', async () => {
        const login = await client.jwtLogin({ mount_point: mount, role: 'demo', jwt: env('JWT') });
        expect(login.auth && login.auth.client_token, 'no client_token');
        expect(client.token === login.auth.client_token, 'node-vault did not keep the token');
        expect(login.auth.policies.includes('webapps'), `policies ${login.auth.policies}`);
        accessor = login.auth.accessor;
        return `policies ${login.auth.policies.join(',')}`;
    });
    await check('token-lookup-self', async () => {
        const self = await client.tokenLookupSelf();
        expect(self.data.display_name.endsWith('-alice'), `display_name ${self.data.display_name}`);
        expect(self.data.path === `auth/${mount}/login`, `path ${self.data.path}`);
        return self.data.display_name;
    });
    await check('token-lookup-accessor', async () => {
        const found = await admin.tokenLookupAccessor({ accessor });
        expect(found.data.accessor === accessor, 'another token');
    });
    await check('token-accessors', async () => {
        const list = await admin.tokenAccessors();
        expect(list.data.keys.includes(accessor), 'the login token is not listed');
    });
    await check('bad-jwt-is-400', async () => {
        try {
            await vault({ apiVersion: 'v1', endpoint }).jwtLogin({ mount_point: mount, role: 'demo', jwt: 'not.a.jwt' });
        } catch (e) {
            expect(e.response && e.response.statusCode === 400, `status ${e.response && e.response.statusCode}`);
            return;
        }
        throw new Error('a bad JWT logged in');
    });
    await check('token-revoke-self', async () => {
        await client.tokenRevokeSelf();
        try {
            await client.tokenLookupSelf();
        } catch (e) {
            expect(e.response && e.response.statusCode === 403, `status ${e.response && e.response.statusCode}`);
            return;
        }
        throw new Error('the revoked token still works');
    });
    await check('disable-auth', async () => {
        await admin.disableAuth({ mount_point: mount });
    });
    process.exit(failures ? 1 : 0);
})();
