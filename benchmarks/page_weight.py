"""Page weight: bytes on the wire and requests per page, as a browser loads it.

Collects the static files into a scratch STATIC_ROOT with the production
storage (whitenoise's CompressedManifestStaticFilesStorage: hashed names, .gz
and .br copies), starts the dashboard under gunicorn on 127.0.0.1 with DEBUG
off in sandbox mode against a scratch SQLite database, signs in a user it
creates, and for each page fetches the HTML and then every stylesheet, script
and icon it names (<link href>, <script src>, <img src>), each once, with
`Accept-Encoding: br, gzip`, as a browser with an empty cache does. CSS url()
and @import are not followed (neither stylesheet here imports another).

Pages: the sign-in page, the intake form, the interactions list, and for
comparison Django admin's "add user" page (the admin shows interactions
read-only: the Interaction model has no add page, and "add user" is the admin
form a page of ours is closest to).

Bytes are counted as they arrive: the compressed body plus the status line
and response headers ("wire"); "body" leaves the headers out. Goals: the
intake form under 40 KB on the wire, and lighter than the admin page.

Bounded: one fetch per file, loopback only, a time limit on every request; it
stops the server it started. Exit code 0 either way, unless --check is given
and a goal is missed.

    .venv/bin/python benchmarks/page_weight.py [--check]
"""

from __future__ import annotations

import argparse
import gzip
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import brotli  # type: ignore[import-untyped]
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import support

PASSWORD = "page-weight-" + secrets.token_hex(8)
ACCEPT_ENCODING = "br, gzip"
TIMEOUT = 10
FORM_GOAL_BYTES = 40 * 1024
PAGES = [
    ("sign-in page", "/accounts/login/", None),
    ("intake form", "/interactions/new/", "clinician"),
    ("interactions list", "/interactions/", "clinician"),
    ("admin: add user", "/admin/auth/user/add/", "bench-admin"),
]
# The temporary settings: base (DEBUG off, the manifest storage), static
# files collected into the scratch folder.
SETTINGS = """\
from config.settings.base import *  # noqa: F403

STATIC_ROOT = {static_root!r}
"""


@dataclass
class Fetch:
    url: str
    status: int
    encoding: str
    body: int
    headers: int

    @property
    def wire(self) -> int:
        return self.body + self.headers


@dataclass
class Page:
    name: str
    fetches: list[Fetch] = field(default_factory=list)

    @property
    def wire(self) -> int:
        return sum(f.wire for f in self.fetches)

    @property
    def body(self) -> int:
        return sum(f.body for f in self.fetches)


class Subresources(HTMLParser):
    """What a browser fetches from the page's markup, in order, once each."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        url = None
        if tag == "link":
            rel = (attributes.get("rel") or "").lower().split()
            if {"stylesheet", "icon", "preload", "modulepreload"} & set(rel):
                url = attributes.get("href")
        elif tag in ("script", "img"):
            url = attributes.get("src")
        if url and not url.startswith("data:") and url not in self.urls:
            self.urls.append(url)


def fetch(http: requests.Session, url: str) -> tuple[Fetch, bytes, str]:
    """One request; its figures, the decoded body and any redirect's target."""
    response = http.get(
        url,
        headers={"Accept-Encoding": ACCEPT_ENCODING},
        stream=True,
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    with response:
        raw = response.raw.read(decode_content=False)
        # The status line and headers as sent: "HTTP/1.1 200 OK\r\n",
        # "Name: value\r\n" each (Set-Cookie once per cookie), a blank line.
        head = len(f"HTTP/1.1 {response.status_code} {response.reason}\r\n") + 2
        head += sum(len(f"{k}: {v}\r\n") for k, v in response.raw.headers.items())
        encoding = response.headers.get("Content-Encoding", "")
    decoded = _decode(raw, encoding)
    location = response.headers.get("Location", "") if response.is_redirect else ""
    figures = Fetch(url, response.status_code, encoding or "-", len(raw), head)
    return figures, decoded, location


def _decode(raw: bytes, encoding: str) -> bytes:
    if encoding == "br":
        return brotli.decompress(raw)
    if encoding == "gzip":
        return gzip.decompress(raw)
    return raw


def load_page(http: requests.Session, base: str, name: str, path: str) -> Page:
    page = Page(name)
    url = base + path
    # The intake form redirects to its own address with a submission key: a
    # browser follows, and that request counts too.
    for _ in range(3):
        first, html, location = fetch(http, url)
        page.fetches.append(first)
        if not location:
            break
        url = urljoin(url, location)
    if first.status != 200:
        raise SystemExit(f"{name}: {path} answered {first.status}")
    parser = Subresources()
    parser.feed(html.decode("utf-8"))
    for src in parser.urls:
        absolute = urljoin(url, src)
        if urlsplit(absolute).netloc != urlsplit(base).netloc:
            raise SystemExit(f"{name}: loads {src} from another origin")
        sub, _, _ = fetch(http, absolute)
        if sub.status != 200:
            raise SystemExit(f"{name}: {src} answered {sub.status}")
        page.fetches.append(sub)
    return page


def scratch_env(workdir: Path) -> dict[str, str]:
    (workdir / "page_weight_settings.py").write_text(
        SETTINGS.format(static_root=str(workdir / "static"))
    )
    return {
        **support.clean_environ(("CORTI_", "DJANGO_", "INTAKE_", "DATABASE_URL")),
        "PYTHONPATH": os.pathsep.join([str(workdir), str(support.ROOT)]),
        "DJANGO_SETTINGS_MODULE": "page_weight_settings",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(40),
        "DJANGO_ALLOWED_HOSTS": support.HOST,
        "DJANGO_LOG_LEVEL": "ERROR",
        "DATABASE_URL": f"sqlite:///{workdir / 'page-weight.sqlite3'}",
        "DEMO_PASSWORD": PASSWORD,
        "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
    }


def measure(workdir: Path) -> list[Page]:
    env = scratch_env(workdir)
    support.prepare_dashboard(env, PASSWORD, quiet=True)
    support.manage(
        env,
        "createsuperuser",
        "--noinput",
        "--username",
        "bench-admin",
        "--email",
        "bench-admin@example.org",
        quiet=True,
    )
    processes: list[subprocess.Popen] = []
    try:
        base = support.start_dashboard(
            processes, env=env, workdir=workdir, WEB_CONCURRENCY="1"
        )
        sessions: dict[str, requests.Session] = {}
        pages = []
        for name, path, user in PAGES:
            if user is None:
                http = requests.Session()
            else:
                if user not in sessions:
                    sessions[user] = support.sign_in(
                        base, user, PASSWORD, timeout=TIMEOUT
                    )
                http = sessions[user]
            pages.append(load_page(http, base, name, path))
        return pages
    finally:
        support.stop_processes(processes)


def report(pages: list[Page]) -> list[str]:
    kb = 1024
    print(f"Accept-Encoding: {ACCEPT_ENCODING}; empty cache; KB = 1024 bytes.\n")
    print(f"{'page':<20} {'requests':>8} {'body KB':>8} {'wire KB':>8}  encodings")
    for page in pages:
        encodings = sorted({f.encoding for f in page.fetches})
        print(
            f"{page.name:<20} {len(page.fetches):>8} {page.body / kb:>8.1f} "
            f"{page.wire / kb:>8.1f}  {', '.join(encodings)}"
        )
    by_name = {page.name: page for page in pages}
    form, admin = by_name["intake form"], by_name["admin: add user"]
    print("\nThe intake form, file by file:")
    for f in form.fetches:
        path = urlsplit(f.url).path
        print(f"  {path:<52} {f.encoding:>4} {f.body:>7} B body {f.wire:>7} B wire")
    problems = []
    print()
    under = form.wire < FORM_GOAL_BYTES
    print(
        f"intake form on the wire: {form.wire / kb:.1f} KB "
        f"(goal: under {FORM_GOAL_BYTES / kb:.0f} KB) " + ("OK" if under else "MISSED")
    )
    if not under:
        problems.append("the intake form is 40 KB or more")
    lighter = form.wire < admin.wire
    print(
        f"intake form vs admin add page: {form.wire / kb:.1f} KB vs "
        f"{admin.wire / kb:.1f} KB, {admin.wire / form.wire:.1f}x lighter; "
        f"{len(form.fetches)} vs {len(admin.fetches)} requests "
        "(goal: lighter) " + ("OK" if lighter else "MISSED")
    )
    if not lighter:
        problems.append("the intake form is not lighter than the admin page")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when a goal is missed"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="corti-intake-page-weight-"))
    try:
        problems = report(measure(workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if problems:
        print("\nMISSED: " + "; ".join(problems))
        if args.check:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
