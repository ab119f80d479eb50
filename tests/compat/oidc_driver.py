#!/usr/bin/env python3
"""A browser stand-in for OIDC logins against tests/oidc_provider (node-oidc-provider).

Follows an authorization URL through the provider's development login and consent forms with
a cookie jar, and stops at the first hop that leaves the provider: a redirect to the client's
redirect_uri (response_mode=query) or the provider's auto-submitting form
(response_mode=form_post). Optionally it then makes that last hop itself, as a browser would
(`deliver`), e.g. into the `bao login -method=oidc` listener. Standard library only.

Library use:
    from oidc_driver import Browser
    b = Browser()
    end = b.authorize(auth_url, login="alice")     # an End
    end.kind            # "redirect" or "form_post" (or "error_page" when the provider refused)
    end.url, end.params # the redirect URL and its query / the form's action and fields
    status, body = b.deliver(end)                  # GET the redirect, or POST the form
    b.device(verification_uri_complete, login="alice")   # RFC 8628: code, confirm, login

Command line (prints one JSON object):
    python3 tests/compat/oidc_driver.py AUTH_URL [--login alice] [--abort] [--deliver]
    python3 tests/compat/oidc_driver.py --device VERIFICATION_URI_COMPLETE [--login alice]
Exit status 0 when the provider was left as expected, 1 otherwise.
"""
import argparse
import html.parser
import http.client
import http.cookiejar
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

TIMEOUT = 20


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class _Forms(html.parser.HTMLParser):
    """Every <form> with its inputs, and buttons associated through form=ID."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []
        self._current: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._current = {"id": a.get("id"), "action": a.get("action", ""),
                             "method": (a.get("method") or "get").lower(), "fields": {}}
            self.forms.append(self._current)
        elif tag == "input" and a.get("name"):
            target = self._current
            if a.get("form"):
                target = next((f for f in self.forms if f["id"] == a["form"]), target)
            if target is not None and a.get("type", "text") not in ("submit", "button"):
                target["fields"][a["name"]] = a.get("value", "")

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


def parse_forms(page: str) -> list[dict]:
    p = _Forms()
    p.feed(page)
    return p.forms


@dataclass
class End:
    """Where the provider handed the browser back to the client."""
    kind: str                      # "redirect", "form_post" or "error_page"
    url: str                       # redirect target, or form action
    params: dict = field(default_factory=dict)  # query parameters, or form fields
    status: int = 0                # the provider's last status
    body: str = ""                 # the provider's last page (error_page, form_post)

    def as_json(self) -> dict:
        return {"kind": self.kind, "url": self.url, "params": self.params, "status": self.status}


def _origin(url: str) -> tuple:
    u = urllib.parse.urlsplit(url)
    return (u.scheme, u.hostname, u.port)


class Browser:
    """A cookie jar and no automatic redirects: every hop is decided here."""

    def __init__(self):
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect())
        self.trace: list[str] = []

    def request(self, method: str, url: str, form: dict | None = None):
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        self.trace.append(f"{method} {url}")
        try:
            with self.opener.open(req, timeout=TIMEOUT) as r:
                try:
                    body = r.read()
                except http.client.IncompleteRead as e:
                    # A CLI's one-shot callback listener may exit while its page is still
                    # being sent (seen with bao 2.7.2's): the status arrived, keep the rest.
                    body = e.partial
                return r.status, dict(r.headers), body.decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read().decode("utf-8", "replace")

    def authorize(self, auth_url: str, login: str = "alice", password: str = "any",
                  abort: bool = False, max_hops: int = 20) -> End:
        """Follows `auth_url` through login and consent (or aborts at the first interaction)."""
        provider = _origin(auth_url)
        method, url, form = "GET", auth_url, None
        for _ in range(max_hops):
            status, headers, body = self.request(method, url, form)
            location = headers.get("Location") or headers.get("location")
            if status in (301, 302, 303, 307, 308) and location:
                target = urllib.parse.urljoin(url, location)
                if _origin(target) != provider:
                    q = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query)
                    return End("redirect", target, {k: v[0] for k, v in q.items()}, status)
                method, url, form = "GET", target, None
                continue
            forms = parse_forms(body) if status == 200 else []
            leaving = [f for f in forms if f["action"] and _origin(
                urllib.parse.urljoin(url, f["action"])) != provider]
            if leaving:  # the form_post response: an auto-submitting form to the client
                f = leaving[0]
                return End("form_post", urllib.parse.urljoin(url, f["action"]), f["fields"],
                           status, body)
            interaction = next((f for f in forms if f["fields"].get("prompt")), None)
            if interaction is None:
                return End("error_page", url, {}, status, body)
            if abort:
                method, url, form = "GET", urllib.parse.urljoin(url, url.rstrip("/") + "/abort"), None
                continue
            fields = dict(interaction["fields"])
            if fields["prompt"] == "login":
                fields.update(login=login, password=password)
            method, url, form = "POST", urllib.parse.urljoin(url, interaction["action"]), fields
        raise RuntimeError(f"no way out of the provider after {max_hops} hops: {self.trace}")

    def deliver(self, end: End):
        """Makes the browser's last hop: GET the redirect, or POST the form_post form.
        Returns (status, body)."""
        if end.kind == "redirect":
            status, _, body = self.request("GET", end.url)
        elif end.kind == "form_post":
            status, _, body = self.request("POST", end.url, end.params)
        else:
            raise ValueError(f"nothing to deliver for {end.kind}")
        return status, body

    def device(self, verification_uri: str, user_code: str | None = None, login: str = "alice",
               password: str = "any", max_hops: int = 20) -> End:
        """RFC 8628 §3.3 as a user: opens the verification URI (entering `user_code` when it
        is not in the URI), confirms, logs in and consents. Ends on the success page
        (kind "error_page" with the page, status 200) or whatever stops it."""
        provider = _origin(verification_uri)
        method, url, form = "GET", verification_uri, None
        for _ in range(max_hops):
            status, headers, body = self.request(method, url, form)
            location = headers.get("Location") or headers.get("location")
            if status in (301, 302, 303, 307, 308) and location:
                method, url, form = "GET", urllib.parse.urljoin(url, location), None
                if _origin(url) != provider:
                    return End("redirect", url, {}, status)
                continue
            forms = parse_forms(body) if status == 200 else []
            interaction = next((f for f in forms if f["fields"].get("prompt")), None)
            device_form = next((f for f in forms if "xsrf" in f["fields"]), None)
            if interaction is not None:
                fields = dict(interaction["fields"])
                if fields["prompt"] == "login":
                    fields.update(login=login, password=password)
                method, url, form = "POST", urllib.parse.urljoin(url, interaction["action"]), fields
            elif device_form is not None:
                fields = dict(device_form["fields"])
                if "user_code" in fields and not fields["user_code"] and user_code:
                    fields["user_code"] = user_code
                if "confirm" not in fields and "user_code" in fields and fields["user_code"]:
                    fields.setdefault("confirm", "yes")
                method, url, form = "POST", urllib.parse.urljoin(url, device_form["action"]), fields
            else:
                return End("error_page", url, {}, status, body)
        raise RuntimeError(f"device flow did not finish after {max_hops} hops: {self.trace}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("url", help="the authorization URL (or, with --device, the verification URI)")
    ap.add_argument("--login", default="alice")
    ap.add_argument("--abort", action="store_true", help="abort at the login form (access_denied)")
    ap.add_argument("--deliver", action="store_true", help="make the last hop to the client")
    ap.add_argument("--device", action="store_true", help="a device verification URI")
    ap.add_argument("--user-code")
    args = ap.parse_args()
    b = Browser()
    if args.device:
        end = b.device(args.url, args.user_code, login=args.login)
        out = end.as_json() | {"success": "Sign-in Success" in end.body}
        print(json.dumps(out))
        sys.exit(0 if out["success"] else 1)
    end = b.authorize(args.url, login=args.login, abort=args.abort)
    out = end.as_json()
    if args.deliver and end.kind in ("redirect", "form_post"):
        status, body = b.deliver(end)
        out["delivered"] = {"status": status, "body": body[:4000]}
    print(json.dumps(out))
    sys.exit(0 if end.kind in ("redirect", "form_post") else 1)


if __name__ == "__main__":
    main()
