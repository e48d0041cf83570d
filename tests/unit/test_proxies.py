"""Who is on the other end of a request that may have come through a reverse proxy."""

from __future__ import annotations

import pytest

from gateway.proxies import Peer, is_loopback, peer


@pytest.mark.parametrize("address, expected", [
    ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("::ffff:127.0.0.1", True), ("localhost", True),
    ("10.0.0.1", False), ("::ffff:10.0.0.1", False), ("", False), (None, False), ("not an address", False),
])
def test_loopback(address, expected):
    assert is_loopback(address) is expected


def test_a_direct_client_is_what_its_socket_says():
    assert peer("127.0.0.1", {}, ()) == Peer("127.0.0.1", False, True)
    assert peer("198.51.100.7", {}, ()) == Peer("198.51.100.7", False, False)


def test_forwarding_headers_from_a_proxy_we_do_not_know_are_not_believed_and_not_local():
    # nginx on this machine, not declared: the client might be anywhere, so it is not "local".
    headers = {"x-forwarded-for": "127.0.0.1", "x-forwarded-proto": "https"}
    assert peer("127.0.0.1", headers, ()) == Peer("127.0.0.1", False, False)
    assert peer("127.0.0.1", {"x-real-ip": "203.0.113.9"}, ()).local is False
    assert peer("127.0.0.1", {"forwarded": "for=203.0.113.9"}, ()).local is False


def test_a_trusted_proxy_is_believed_about_the_client_and_tls():
    trusted = ("127.0.0.1",)
    assert peer("127.0.0.1", {"x-forwarded-for": "203.0.113.9", "x-forwarded-proto": "https"}, trusted) == \
        Peer("203.0.113.9", True, False)
    # A proxy's word never makes a client local: it may be passing on what the client said.
    assert peer("127.0.0.1", {"x-forwarded-for": "127.0.0.1"}, trusted) == Peer("127.0.0.1", False, False)
    # Only the first value of a list of protocols, case-blind.
    assert peer("127.0.0.1", {"x-forwarded-for": "a", "x-forwarded-proto": "WSS, http"}, trusted).https


def test_the_client_is_the_nearest_address_that_is_not_one_of_our_proxies():
    # A client may send its own X-Forwarded-For: only what our proxies appended counts.
    headers = {"x-forwarded-for": "127.0.0.5, 203.0.113.9, 10.0.0.2"}
    assert peer("127.0.0.1", headers, ("127.0.0.1", "10.0.0.2")).address == "203.0.113.9"
    assert peer("127.0.0.1", {"x-forwarded-for": "10.0.0.2"}, ("127.0.0.1", "10.0.0.2")).address == "10.0.0.2"


def test_a_trusted_proxy_without_x_forwarded_for_is_the_client():
    assert peer("127.0.0.1", {"x-forwarded-proto": "https"}, ("127.0.0.1",)) == Peer("127.0.0.1", False, False)


def test_a_trusted_proxy_that_names_no_client_stands_for_everyone_behind_it():
    # Today's nginx on this machine, set up without X-Forwarded-For: every client reaches us from 127.0.0.1.
    assert peer("127.0.0.1", {}, ("127.0.0.1",)) == Peer("127.0.0.1", False, False)
    assert peer("::1", {"x-forwarded-for": " , "}, ("::1",)) == Peer("::1", False, False)


@pytest.mark.parametrize("header", ["127.0.0.1", "127.0.0.1, 127.0.0.1", "::1", "localhost"])
def test_a_client_that_claims_to_be_local_is_not(header):
    trusted = ("127.0.0.1", "10.0.0.2")
    # Straight to the gateway: not believed at all.
    assert peer("203.0.113.9", {"x-forwarded-for": header}, trusted) == Peer("203.0.113.9", False, False)
    # Through our proxy, which appends the address it saw (right to left, that address is the client).
    assert peer("127.0.0.1", {"x-forwarded-for": f"{header}, 203.0.113.9"}, trusted) == \
        Peer("203.0.113.9", False, False)
    # Through a proxy that passes the client's header on unchanged: the claim is all there is, and not enough.
    assert peer("127.0.0.1", {"x-forwarded-for": header}, trusted).local is False
    # A client on the proxy's machine, through the second proxy: its loopback is not ours.
    assert peer("127.0.0.1", {"x-forwarded-for": f"{header}, 10.0.0.2"}, trusted).local is False
