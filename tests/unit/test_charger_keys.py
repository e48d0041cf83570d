"""The one rule for an AuthorizationKey's strength."""

from __future__ import annotations

import secrets

import pytest

from gateway.chargepoint.charger_auth import key_problem


@pytest.mark.parametrize("key", ["00112233445566778899aabbccddeeff00112233", "correct-horse-battery",
                                 "9f1c07a2d45e3b86"])
def test_ordinary_keys_pass(key):
    assert key_problem(key) is None


def test_random_keys_pass():
    for _ in range(1000):
        for key in (secrets.token_hex(20), secrets.token_hex(16), secrets.token_urlsafe(15)[:16]):
            assert key_problem(key) is None, key


@pytest.mark.parametrize("key, why", [
    ("short", "16 to 40"), ("x" * 41, "16 to 40"), (None, "16 to 40"), (1234567890123456, "16 to 40"),
    ("aaaaaaaaaaaaaaaa", "1 different"), ("aaaaaaaaaaaaaaab", "2 different"), ("abcdefabcdefabcdefa", "6 characters repeated"),
    ("0123456789ab0123456789ab", "12 characters repeated"), ("päßwörd-päßwörd-x", "ASCII"),
])
def test_weak_keys_are_refused_with_the_reason(key, why):
    problem = key_problem(key)
    assert problem is not None and why in problem
    if isinstance(key, str):
        assert key not in problem


def test_security_keys_are_known_whatever_their_case():
    from gateway.chargepoint.commands import security_key
    from gateway.ocpp.secrets import redact

    assert security_key({"key": " authorizationKEY", "value": "x"}) == "AuthorizationKey"
    assert security_key({"key": "SECURITYPROFILE", "value": "0"}) == "SecurityProfile"
    assert security_key({"key": "HeartbeatInterval", "value": "0"}) is None
    assert security_key({"key": 5}) is None
    # A key sent in another case is as secret in the records.
    assert redact("ChangeConfiguration", "request", {"key": "authorizationkey", "value": "s3cret-key"})["value"] \
        == "********"
