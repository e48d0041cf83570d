"""The web console at /web: one self-contained page (no CDN, no build step) that drives the API with the
same accounts, served with a per-response CSP nonce for its inline script and style."""

from __future__ import annotations

import secrets
from importlib import resources

from quart import Response

from .routes import PUBLIC, Routes
from .schemas import op

routes = Routes("console", __name__)

NONCE = "__CSP_NONCE__"  # the page's placeholder, replaced on every response


def _page() -> str:
    return resources.files(__package__).joinpath("static", "console.html").read_text("utf-8")


def policy(nonce: str) -> str:
    """Only the page's own inline script and style run; it talks to this origin and nothing else.
    form-action 'none': a login form must never be submitted natively (the password would land in a URL)."""
    return (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; connect-src 'self'; "
            "img-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'; "
            "require-trusted-types-for 'script'; trusted-types 'none'")


@routes.route("/web", role=PUBLIC, get=op(
    "gateway", "The web console (self-contained HTML); it logs in with the API's accounts", {"type": "string"},
    media="text/html", public=True))
async def console() -> Response:
    nonce = secrets.token_urlsafe(18)
    response = Response(_page().replace(NONCE, nonce), content_type="text/html; charset=utf-8")
    response.headers.update({
        "Content-Security-Policy": policy(nonce),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",  # a nonce is good for one response
    })
    return response
