"""What a browser may make the API do: the Host it names, the site a request comes from."""

from __future__ import annotations

import pytest

from gateway.http.sameorigin import cross_site, host_allowed, host_name


@pytest.mark.parametrize("host, name", [
    ("localhost:8080", "localhost"), ("LOCALHOST", "localhost"), ("[::1]:8080", "::1"), ("[::1]", "::1"),
    ("gw.example.com.", "gw.example.com"), ("127.0.0.1:80", "127.0.0.1"),
])
def test_host_name(host, name):
    assert host_name(host) == name


@pytest.mark.parametrize("host", [None, "", "localhost", "localhost:8080", "app.localhost", "127.0.0.1:8080",
                                  "[::1]:8080", "192.0.2.7", "[2001:db8::1]:8080", "gw.example.com:8443"])
def test_allowed_hosts(host):
    assert host_allowed(host, {"gw.example.com"})


@pytest.mark.parametrize("host", ["rebind.evil.example", "rebind.evil.example:8080", "localhost.evil.example",
                                  "127.0.0.1.evil.example", "gw.example.com.evil.example"])
def test_other_names_are_refused(host):
    assert not host_allowed(host, {"gw.example.com"})
    assert host_allowed(host, {"*"})


def test_curl_and_our_own_pages_are_not_cross_site():
    assert cross_site({}, "127.0.0.1:8080") is None  # curl: no browser headers
    assert cross_site({"sec-fetch-site": "same-origin", "origin": "http://127.0.0.1:8080"}, "127.0.0.1:8080") is None
    assert cross_site({"sec-fetch-site": "none"}, "127.0.0.1:8080") is None  # typed into the address bar
    assert cross_site({"origin": "https://gw.example.com"}, "gw.example.com") is None  # behind a TLS proxy


@pytest.mark.parametrize("headers", [
    {"sec-fetch-site": "cross-site"}, {"sec-fetch-site": "same-site"},
    {"sec-fetch-site": "same-origin", "origin": "http://evil.example"},  # a lying header never helps
    {"origin": "http://evil.example"}, {"origin": "null"}, {"origin": "http://127.0.0.1:8081"},
])
def test_another_site_is_named(headers):
    assert cross_site(headers, "127.0.0.1:8080")
