#!/usr/bin/env python3
"""End-to-end test: a real OpenID provider (npm oidc-provider 9) logs in through OIDC Discovery.

Run:  python3 tests/compat/oidc_provider_e2e.py --bin PATH_TO_AUTHMOUNT [--key-type rsa|ec]
(runs `npm ci --silent` in tests/oidc_provider when its node_modules is missing; needs Node.js,
Python 3.11 with `requests`.)

Starts tests/oidc_provider/provider.mjs (issuer http://127.0.0.1:PORT, a client_credentials
client whose access tokens are RS256 (or, with --key-type ec, ES256) JWTs with aud "authmount-e2e") and `authmount server -dev`,
enables jwt at "oidc-e2e", configures {"oidc_discovery_url": issuer} and a jwt role, gets an
access token from the provider's token endpoint (found in its discovery document), logs in and
looks the token up. Then it measures how often authmount fetches the provider's JWKS (the
provider counts them, GET /__stats) and asserts DECISIONS D5:
  * rotation: the provider restarts on the same port with a new first key; after the 5 s
    cool-down a token signed with the new key logs in with at most 1 JWKS fetch, and a second
    login with it adds none;
  * random kids: 50 logins with tokens whose `kid` is unknown (the provider's payload re-signed
    with a local RSA key) are all refused with 400 and cause at most 3 JWKS fetches;
  * known kid, bad signature: 50 such logins are refused with 400, at most 3 JWKS fetches;
  * provider down: with the provider stopped, a token from before still logs in (cached key);
    with a stub answering 503 on the port, a cached-key login makes no request, an unknown kid
    is a 400 after at most 1 attempt, and the cached key keeps working afterwards.
Prints each count and ends with "oidc-provider e2e: N passed, M failed"; exits 1 on a failure.
Both processes are killed on exit, whatever happens.
"""
import argparse, atexit, base64, hashlib, http.server, json, os, secrets, signal, socket
import subprocess, sys, tempfile, threading, time
from concurrent.futures import ThreadPoolExecutor

import requests

ROOT = "ROOT"
MOUNT, ROLE = "oidc-e2e", "e2e"
CLIENT_ID, CLIENT_SECRET = "e2e-client", "e2e-secret"
RESOURCE, AUDIENCE = "urn:authmount:e2e", "authmount-e2e"
COOL_DOWN = 5.0  # authmount's refetch cool-down (DECISIONS D5)
PROVIDER_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "oidc_provider")
PROVIDER_DIR = os.path.normpath(PROVIDER_DIR)

passed, failed = 0, 0
procs: list[subprocess.Popen] = []


def check(name, cond, got=None):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok: {name}")
    else:
        failed += 1
        print(f"FAIL: {name} (got {got!r})")
    return cond


def count(name, value):
    print(f"count: {name} = {value}")


# ---------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen | None):
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.terminate()
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass


def stop_all():
    for p in procs:
        stop(p)


def die_with_parent():
    """Linux: the child gets SIGKILL when this script dies, even by SIGKILL."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def start(cmd, log_path, cwd=None) -> subprocess.Popen:
    log = open(log_path, "ab")
    p = subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
    log.close()
    procs.append(p)
    return p


def wait_http(url, proc, what, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer 200 at {url} within {timeout} s")


def tail(path, n=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError as e:
        return str(e)


class Provider:
    """tests/oidc_provider/provider.mjs on one port, restartable with other keys."""

    def __init__(self, port, workdir, key_type):
        self.port, self.workdir, self.key_type = port, workdir, key_type
        self.issuer = f"http://127.0.0.1:{port}"
        self.log = os.path.join(workdir, "provider.log")
        self.proc = None

    def genkeys(self, path, keep=None) -> str:
        cmd = ["node", "provider.mjs", "genkeys", path, self.key_type]
        cmd += ["--keep", keep] if keep else []
        out = subprocess.run(cmd, cwd=PROVIDER_DIR, check=True, capture_output=True, text=True,
                             timeout=60)
        return out.stdout.strip()

    def start(self, keyfile):
        self.proc = start(["node", "provider.mjs", "serve", str(self.port), keyfile], self.log,
                          cwd=PROVIDER_DIR)
        wait_http(f"{self.issuer}/.well-known/openid-configuration", self.proc, "oidc-provider")
        self.discovery = requests.get(f"{self.issuer}/.well-known/openid-configuration",
                                      timeout=5).json()
        self.reset_stats_base()

    def reset_stats_base(self):
        # Counts are taken from here on, so this script's own discovery GETs are left out.
        self.base = self.stats()

    def stop(self):
        stop(self.proc)
        self.proc = None

    def stats(self) -> dict:
        return requests.get(f"{self.issuer}/__stats", timeout=5).json()

    def delta(self) -> dict:
        s = self.stats()
        return {k: s[k] - self.base.get(k, 0) for k in s}

    def access_token(self) -> str:
        r = requests.post(self.discovery["token_endpoint"], auth=(CLIENT_ID, CLIENT_SECRET),
                          data={"grant_type": "client_credentials", "resource": RESOURCE},
                          timeout=10)
        r.raise_for_status()
        return r.json()["access_token"]


class Stub503:
    """Stands on the provider's port while it is down: answers 503 to everything, counts."""

    def __init__(self, port):
        hits = self.hits = {"jwks": 0, "discovery": 0, "other": 0}

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                key = {"/jwks": "jwks", "/.well-known/openid-configuration": "discovery"}
                hits[key.get(self.path, "other")] += 1
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------- JWT helpers (stdlib RSA)


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwt_parts(tok: str):
    h, p, _ = tok.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(p))


SMALL_PRIMES = [p for p in range(3, 2000) if all(p % q for q in range(2, int(p ** 0.5) + 1))]


def probable_prime(n: int) -> bool:
    if any(n % p == 0 for p in SMALL_PRIMES):
        return n in SMALL_PRIMES
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for _ in range(40):
        x = pow(secrets.randbelow(n - 3) + 2, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def random_prime(bits: int) -> int:
    while True:
        n = secrets.randbits(bits) | (3 << (bits - 2)) | 1
        if probable_prime(n):
            return n


def rsa_keypair(bits=2048):
    e = 65537
    while True:
        p, q = random_prime(bits // 2), random_prime(bits // 2)
        phi = (p - 1) * (q - 1)
        if p != q and phi % e and (p * q).bit_length() == bits:
            return p * q, e, pow(e, -1, phi)


SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def rs256_sign(key, signing_input: bytes) -> bytes:
    n, e, d = key
    k = (n.bit_length() + 7) // 8
    t = SHA256_DIGEST_INFO + hashlib.sha256(signing_input).digest()
    em = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    sig = pow(int.from_bytes(em, "big"), d, n)
    assert pow(sig, e, n) == int.from_bytes(em, "big")
    return sig.to_bytes(k, "big")


def resign_with_kid(key, tok: str, kid: str) -> str:
    """The provider's payload, byte for byte, under a new header with `kid`, RS256 by `key`."""
    _, payload, _ = tok.split(".")
    head = b64url(json.dumps({"alg": "RS256", "typ": "at+jwt", "kid": kid}).encode())
    return f"{head}.{payload}.{b64url(rs256_sign(key, f'{head}.{payload}'.encode()))}"


# ---------------------------------------------------------------- authmount client


class Vault:
    def __init__(self, addr):
        self.addr = addr
        self.s = requests.Session()

    def req(self, method, path, token=ROOT, body=None):
        headers = {"X-Vault-Token": token} if token else {}
        return self.s.request(method, f"{self.addr}/v1/{path}", headers=headers, json=body,
                              timeout=30)

    def login(self, jwt):
        return self.req("POST", f"auth/{MOUNT}/login", token=None, body={"role": ROLE, "jwt": jwt})


def short(r: requests.Response) -> str:
    return f"{r.status_code} {r.text.strip()[:300]}"


# ---------------------------------------------------------------- the test


def run(bin_path, workdir, key_type):
    alg = {"rsa": "RS256", "ec": "ES256"}[key_type]
    prov = Provider(free_port(), workdir, key_type)
    k1 = os.path.join(workdir, "keys1.json")
    kid1 = prov.genkeys(k1)
    prov.start(k1)
    print(f"provider: {prov.issuer}, first key {kid1}")

    am_port = free_port()
    am_log = os.path.join(workdir, "authmount.log")
    am = start([bin_path, "server", "-dev", f"-dev-root-token-id={ROOT}",
                f"-dev-listen-address=127.0.0.1:{am_port}"], am_log)
    try:
        wait_http(f"http://127.0.0.1:{am_port}/v1/sys/health", am, "authmount")
    except RuntimeError:
        print(tail(am_log))
        raise
    v = Vault(f"http://127.0.0.1:{am_port}")

    # --- setup: mount, config by discovery, role
    r = v.req("POST", f"sys/auth/{MOUNT}", body={"type": "jwt"})
    check("enable jwt", r.status_code in (200, 204), short(r))
    r = v.req("POST", f"auth/{MOUNT}/config", body={"oidc_discovery_url": prov.issuer})
    check("write config {oidc_discovery_url}", r.status_code in (200, 204), short(r))
    after_config = prov.delta()
    count("fetches by the config write (jwks, discovery)",
          (after_config["jwks"], after_config["discovery"]))
    r = v.req("POST", f"auth/{MOUNT}/role/{ROLE}", body={
        "role_type": "jwt", "user_claim": "sub", "bound_audiences": [AUDIENCE],
        "token_policies": ["e2e"]})
    check("write role", r.status_code in (200, 204), short(r))
    r = v.req("GET", f"auth/{MOUNT}/config")
    check("read config oidc_discovery_url",
          r.status_code == 200 and r.json()["data"].get("oidc_discovery_url") == prov.issuer,
          short(r))

    # --- initial login with a real access token
    tok1 = prov.access_token()
    head, claims = jwt_parts(tok1)
    print(f"access token header: {json.dumps(head)}")
    print(f"access token claims: {json.dumps(claims)}")
    check(f"provider token is an {alg} at+jwt with the first kid",
          head.get("alg") == alg and head.get("typ") == "at+jwt" and head.get("kid") == kid1,
          head)
    check("provider token aud/iss/sub", claims.get("aud") == AUDIENCE
          and claims.get("iss") == prov.issuer and claims.get("sub") == CLIENT_ID, claims)
    r = v.login(tok1)
    ok = check("login with the provider's token: 200", r.status_code == 200, short(r))
    client_token = r.json().get("auth", {}).get("client_token") if ok else None
    check("login auth.client_token", isinstance(client_token, str) and client_token != "",
          short(r))
    if ok:
        auth = r.json()["auth"]
        check("login policies include e2e", "e2e" in (auth.get("policies") or []), auth)
        check("login metadata.role", (auth.get("metadata") or {}).get("role") == ROLE, auth)
    if client_token:
        r = v.req("GET", "auth/token/lookup-self", token=client_token)
        ok = check("lookup-self 200", r.status_code == 200, short(r))
        if ok:
            d = r.json()["data"]
            check("lookup-self policies include e2e", "e2e" in (d.get("policies") or []), d)
            check("lookup-self display_name", d.get("display_name") == f"{MOUNT}-{CLIENT_ID}",
                  d.get("display_name"))
            check("lookup-self meta.role", (d.get("meta") or {}).get("role") == ROLE, d.get("meta"))
    initial = prov.delta()
    count("fetches by config + first login (jwks, discovery)",
          (initial["jwks"], initial["discovery"]))
    check("config + first login: at most 1 JWKS fetch", initial["jwks"] <= 1, initial)
    r = v.login(tok1)
    check("second login with the same token: 200", r.status_code == 200, short(r))
    again = prov.delta()
    count("fetches added by a second login (jwks)", again["jwks"] - initial["jwks"])
    check("second login adds no JWKS fetch", again["jwks"] == initial["jwks"], again)

    # --- rotation: same port, a new first key (the old one stays second)
    k2 = os.path.join(workdir, "keys2.json")
    kid2 = prov.genkeys(k2, keep=k1)
    prov.stop()
    prov.start(k2)  # the new process counts from zero
    time.sleep(COOL_DOWN + 0.5)
    tok2 = prov.access_token()
    check("rotated token is signed with the new kid", jwt_parts(tok2)[0].get("kid") == kid2,
          jwt_parts(tok2)[0])
    r = v.login(tok2)
    check("login with the rotated key: 200", r.status_code == 200, short(r))
    rot = prov.delta()
    count("rotation: fetches for the first new-key login (jwks, discovery)",
          (rot["jwks"], rot["discovery"]))
    check("rotation: at most 1 JWKS fetch", rot["jwks"] <= 1, rot)
    r = v.login(tok2)
    check("second login with the rotated key: 200", r.status_code == 200, short(r))
    rot2 = prov.delta()
    count("rotation: fetches added by the second new-key login (jwks)", rot2["jwks"] - rot["jwks"])
    check("rotation: second login adds no JWKS fetch", rot2["jwks"] == rot["jwks"], rot2)
    r = v.login(tok1)
    check("old-key token (still published) logs in after rotation", r.status_code == 200, short(r))

    # --- 50 unknown random kids
    t0 = time.monotonic()
    local_key = rsa_keypair(2048)
    print(f"local RSA-2048 key generated in {time.monotonic() - t0:.2f} s")
    forged = [resign_with_kid(local_key, tok2, f"random-{secrets.token_hex(8)}") for _ in range(50)]
    time.sleep(max(0.0, COOL_DOWN + 0.5 - (time.monotonic() - t0)))  # out of the cool-down
    before = prov.delta()
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as ex:
        results = list(ex.map(lambda tok: (lambda r: (r.status_code, r.text))(v.login(tok)), forged))
    spent = time.monotonic() - t0
    after = prov.delta()
    statuses = sorted({s for s, _ in results})
    print(f"random kids: 50 logins in {spent:.2f} s, statuses {statuses}, first answer "
          f"{results[0][1].strip()[:200]}")
    check("random kids: all 50 refused with 400", all(s == 400 for s, _ in results), statuses)
    n = after["jwks"] - before["jwks"]
    count("random kids: JWKS fetches for 50 unknown kids", n)
    count("random kids: discovery fetches for 50 unknown kids",
          after["discovery"] - before["discovery"])
    check("random kids: at most 3 JWKS fetches", n <= 3, n)
    r = v.login(tok2)
    check("a good token still logs in after the random kids", r.status_code == 200, short(r))

    # --- 50 tokens with the provider's current kid but a signature by the local key
    #     (the other refetch trigger of D5: a failed verification)
    kid_now = jwt_parts(tok2)[0]["kid"]
    bad_sig = [resign_with_kid(local_key, tok2, kid_now) for _ in range(50)]
    time.sleep(COOL_DOWN + 0.5)
    before = prov.delta()
    with ThreadPoolExecutor(max_workers=8) as ex:
        statuses = list(ex.map(lambda tok: v.login(tok).status_code, bad_sig))
    after = prov.delta()
    check("known kid, bad signature: all 50 refused with 400",
          all(s == 400 for s in statuses), sorted(set(statuses)))
    n = after["jwks"] - before["jwks"]
    count("known kid, bad signature: JWKS fetches for 50 logins", n)
    check("known kid, bad signature: at most 3 JWKS fetches", n <= 3, n)

    # --- provider down
    total_jwks = after["jwks"]
    prov.stop()
    r = v.login(tok2)
    check("provider stopped: token from before (cached key) logs in", r.status_code == 200,
          short(r))
    r = v.login(tok1)
    check("provider stopped: old-key token (cached) logs in", r.status_code == 200, short(r))
    time.sleep(COOL_DOWN + 0.5)
    stub = Stub503(prov.port)
    try:
        r = v.login(tok2)
        check("provider answering 503: cached-key login 200", r.status_code == 200, short(r))
        count("provider down: requests for a cached-key login (jwks, discovery)",
              (stub.hits["jwks"], stub.hits["discovery"]))
        check("provider down: a cached-key login makes no request", stub.hits["jwks"] == 0
              and stub.hits["discovery"] == 0, stub.hits)
        r = v.login(resign_with_kid(local_key, tok2, f"random-{secrets.token_hex(8)}"))
        print(f"provider down, unknown kid: {short(r)}")
        check("provider down: unknown kid refused with 400", r.status_code == 400, short(r))
        count("provider down: requests for an unknown-kid login (jwks, discovery)",
              (stub.hits["jwks"], stub.hits["discovery"]))
        check("provider down: at most 1 JWKS attempt for an unknown kid",
              stub.hits["jwks"] <= 1, stub.hits)
        r = v.login(tok2)
        check("provider down: cached key still works after a failed fetch",
              r.status_code == 200, short(r))
    finally:
        stub.close()
    count("JWKS fetches served by the provider in this run (first + rotated process)",
          f"{again['jwks']} + {total_jwks}")

    r = v.req("DELETE", f"sys/auth/{MOUNT}")
    check("disable mount", r.status_code in (200, 204), short(r))
    if failed:
        print("--- authmount log (tail)\n" + tail(am_log))
        print("--- provider log (tail)\n" + tail(prov.log))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True, help="path to the authmount binary")
    ap.add_argument("--key-type", choices=["rsa", "ec"], default="rsa",
                    help="the provider's signing keys: rsa (RS256, default) or ec (ES256)")
    args = ap.parse_args()
    bin_path = os.path.abspath(args.bin)

    atexit.register(stop_all)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda s, f: sys.exit(128 + s))

    started = time.monotonic()
    if not os.path.isdir(os.path.join(PROVIDER_DIR, "node_modules")):
        print("npm ci --silent in tests/oidc_provider")
        subprocess.run(["npm", "ci", "--silent"], cwd=PROVIDER_DIR, check=True, timeout=300)
    with tempfile.TemporaryDirectory(prefix="authmount-oidc-e2e-") as workdir:
        try:
            run(bin_path, workdir, args.key_type)
        except Exception as e:  # an unexpected error fails the run
            check("no unexpected error", False, f"{type(e).__name__}: {e}")
        finally:
            stop_all()
    print(f"took {time.monotonic() - started:.1f} s")
    print(f"oidc-provider e2e: {passed} passed, {failed} failed")
    sys.exit(0 if failed == 0 else 1)


if __name__ == "__main__":
    main()
