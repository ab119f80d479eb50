#!/usr/bin/env python3
"""hvac compatibility test: drives a running authmount with the real Python Vault client.

Run:  pip install hvac cryptography
      python3 tests/compat/hvac_login.py --addr http://127.0.0.1:PORT --token ROOT
Mounts jwt at "hvac-jwt", configures a fresh RSA-2048 key, creates role "demo", logs in with an
RS256 JWT signed here, checks the token with lookup-self, checks a bad signature is a 400,
then disables the mount. Prints "hvac compat: N passed, 0 failed" and exits 0, or exits 1.
Needs only hvac + cryptography + stdlib (Python 3.11).
"""
import argparse, base64, json, sys, time

import hvac
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

MOUNT, ROLE, USER = "hvac-jwt", "demo", "alice"
ISS, SUB, AUD = "https://issuer.example", "svc-123", "hvac-aud"
passed, failed = 0, 0


def check(name, cond, got=None):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print(f"FAIL: {name} (got {got!r})")


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def sign_rs256(key, claims: dict) -> str:
    head = b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    sig = key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{body}.{b64url(sig)}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True)
    ap.add_argument("--token", required=True)
    args = ap.parse_args()

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    now = int(time.time())
    claims = {"iss": ISS, "sub": SUB, "aud": [AUD], "https://vault/user": USER,
              "https://vault/groups": ["eng", "ops"], "iat": now, "nbf": now, "exp": now + 600}
    jwt = sign_rs256(key, claims)

    admin = hvac.Client(url=args.addr, token=args.token)
    try:
        admin.sys.disable_auth_method(path=MOUNT)  # leftovers from an aborted run
    except hvac.exceptions.VaultError:
        pass
    r = admin.sys.enable_auth_method("jwt", path=MOUNT)
    check("enable status 204", getattr(r, "status_code", None) == 204, r)
    try:
        r = admin.auth.jwt.configure(jwt_validation_pubkeys=[pem], bound_issuer=ISS, path=MOUNT)
        check("configure status 204", getattr(r, "status_code", None) == 204, r)
        r = admin.auth.jwt.create_role(
            name=ROLE, role_type="jwt", user_claim="https://vault/user",
            groups_claim="https://vault/groups", bound_subject=SUB, bound_audiences=[AUD],
            token_policies=["webapps"], token_ttl="1h", allowed_redirect_uris=[], path=MOUNT)
        check("create_role status 204", getattr(r, "status_code", None) == 204, r)

        d = admin.auth.jwt.read_role(name=ROLE, path=MOUNT)["data"]
        check("read_role role_type", d.get("role_type") == "jwt", d.get("role_type"))
        check("read_role user_claim", d.get("user_claim") == "https://vault/user", d.get("user_claim"))
        check("read_role bound_audiences", d.get("bound_audiences") == [AUD], d.get("bound_audiences"))
        check("read_role token_policies", d.get("token_policies") == ["webapps"], d.get("token_policies"))
        check("read_role token_ttl", d.get("token_ttl") == 3600, d.get("token_ttl"))
        keys = admin.auth.jwt.list_roles(path=MOUNT)["data"]["keys"]
        check("list_roles keys", keys == [ROLE], keys)

        # jwt_login(use_token=True, the default) makes hvac switch admin.token to the new token.
        auth = admin.auth.jwt.jwt_login(role=ROLE, jwt=jwt, path=MOUNT)["auth"]
        admin.token = args.token
        tok = auth.get("client_token")
        check("login client_token non-empty", isinstance(tok, str) and tok != "", tok)
        check("login policies", {"webapps", "default"} <= set(auth.get("policies") or []), auth.get("policies"))
        check("login metadata.role", (auth.get("metadata") or {}).get("role") == ROLE, auth.get("metadata"))
        check("login lease_duration", auth.get("lease_duration") == 3600, auth.get("lease_duration"))

        user = hvac.Client(url=args.addr, token=tok)
        d = user.auth.token.lookup_self()["data"]
        check("lookup_self display_name", d.get("display_name") == f"{MOUNT}-{USER}", d.get("display_name"))
        check("lookup_self meta.role", (d.get("meta") or {}).get("role") == ROLE, d.get("meta"))

        head, body, sig = jwt.split(".")
        bad = f"{head}.{body}.{b64url(bytes(b ^ 0xFF for b in base64.urlsafe_b64decode(sig + '==')))}"
        try:
            admin.auth.jwt.jwt_login(role=ROLE, jwt=bad, use_token=False, path=MOUNT)
            check("bad signature raises InvalidRequest", False, "login succeeded")
        except hvac.exceptions.InvalidRequest as e:
            check("bad signature raises InvalidRequest", True)
            check("bad signature message", "error validating token" in str(e), str(e))
        except hvac.exceptions.VaultError as e:
            check("bad signature raises InvalidRequest", False, f"{type(e).__name__}: {e}")
    except Exception as e:  # an unexpected API error (or a KeyError on a bad shape) fails the run
        check("no unexpected error", False, f"{type(e).__name__}: {e}")
    finally:
        admin.token = args.token
        try:
            r = admin.sys.disable_auth_method(path=MOUNT)
            check("disable status 204", getattr(r, "status_code", None) == 204, r)
        except Exception as e:
            check("disable", False, f"{type(e).__name__}: {e}")

    print(f"hvac compat: {passed} passed, {failed} failed")
    sys.exit(0 if failed == 0 else 1)


if __name__ == "__main__":
    main()
