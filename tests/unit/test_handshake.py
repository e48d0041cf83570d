"""gateway.chargepoint.handshake: the charger id from the URL and the subprotocol choice."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.chargepoint.handshake import (MAX_ID_LENGTH, OCPP16, HandshakeRefused, accounting_id, charger_id,
                                           check_id, choose_subprotocol, id_key)


def refused(fn, *args) -> HandshakeRefused:
    with pytest.raises(HandshakeRefused) as info:
        fn(*args)
    return info.value


# --- charger_id -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target, expected",
    [
        ("/ocpp/CP1", "CP1"),
        ("/CP1", "CP1"),
        ("/some/deeper/prefix/CP1", "CP1"),
        ("/ocpp/CP%201", "CP 1"),
        ("/ocpp/XQ-0117_a.b", "XQ-0117_a.b"),
        ("/ocpp/CP1?token=secret", "CP1"),
        ("/ocpp/CP1?", "CP1"),
        ("/ocpp/CP%3F1?x=1", "CP?1"),
        ("/ocpp/Z%C3%BCrich", "Zürich"),
    ],
)
def test_charger_id(target, expected):
    assert charger_id(target) == expected


@pytest.mark.parametrize("target", ["/ocpp/", "/", "", "/ocpp/?id=CP1"])
def test_empty_id_is_refused_404(target):
    err = refused(charger_id, target)
    assert err.status == 404
    assert "/ocpp/{id}" in err.reason


def test_48_characters_are_accepted():
    assert MAX_ID_LENGTH == 48
    assert charger_id("/ocpp/" + "A" * 48) == "A" * 48


def test_49_characters_are_refused_400():
    err = refused(charger_id, "/ocpp/" + "A" * 49)
    assert err.status == 400
    assert "48" in err.reason


def test_length_is_counted_after_decoding():
    # 48 characters, each two UTF-8 bytes: 288 characters of URL, 48 once decoded.
    assert charger_id("/ocpp/" + "%C3%A9" * 48) == "é" * 48
    assert refused(charger_id, "/ocpp/" + "%C3%A9" * 49).status == 400


@pytest.mark.parametrize("escaped", ["%0A", "%00", "%1F", "%0D", "%09", "%7F", "%E2%80%8B", "%E2%80%A8"])
def test_control_characters_are_refused_400(escaped):
    err = refused(charger_id, f"/ocpp/CP{escaped}1")
    assert err.status == 400
    assert "control" in err.reason


@pytest.mark.parametrize("escaped", ["%FF", "%C3", "%C3%28", "%ED%A0%80"])
def test_invalid_utf8_is_refused_400(escaped):
    err = refused(charger_id, f"/ocpp/CP{escaped}")
    assert err.status == 400
    assert "UTF-8" in err.reason


def test_refusal_message_is_the_exception_text():
    err = refused(charger_id, "/ocpp/CP%FF")
    assert str(err) == err.reason


# --- choose_subprotocol -----------------------------------------------------------------------


@pytest.mark.parametrize("required", [False, True])
def test_picks_ocpp16(required):
    assert OCPP16 == "ocpp1.6"
    assert choose_subprotocol(["ocpp0.1", "ocpp1.6"], required) == "ocpp1.6"
    assert choose_subprotocol(["ocpp1.6"], required) == "ocpp1.6"
    assert choose_subprotocol(["ocpp1.6", "ocpp2.0.1"], required) == "ocpp1.6"


@pytest.mark.parametrize("required", [False, True])
def test_refuses_a_list_without_ocpp16(required):
    err = refused(choose_subprotocol, ["ocpp0.1"], required)
    assert err.status == 400
    assert "ocpp0.1" in err.reason
    assert "ocpp1.6" in err.reason


def test_subprotocol_match_is_exact():
    assert refused(choose_subprotocol, ["OCPP1.6"], False).status == 400
    assert refused(choose_subprotocol, ["ocpp1.6j"], False).status == 400


def test_no_subprotocol_is_accepted_as_none_unless_required():
    assert choose_subprotocol([], False) is None


def test_no_subprotocol_is_refused_when_required():
    err = refused(choose_subprotocol, [], True)
    assert err.status == 400
    assert "ocpp1.6" in err.reason


# --- the id rules: one stored form, reachable through the API, not a lookalike --------------------


def test_ids_are_nfc_normalised():
    # "Zürich" with the ü as u + combining diaeresis, as some keyboards and firmware write it.
    assert charger_id("/ocpp/Zu%CC%88rich") == "Z\u00fcrich"
    assert check_id("Zu\u0308rich") == charger_id("/ocpp/Z%C3%BCrich")


@pytest.mark.parametrize("target", ["/ocpp/%20CP1", "/ocpp/CP1%20", "/ocpp/%20CP1%20", "/ocpp/CP1%C2%A0"])
def test_surrounding_spaces_are_refused_not_stripped(target):
    err = refused(charger_id, target)
    assert err.status == 400
    assert "spaces around" in err.reason


def test_inner_spaces_are_kept():
    assert charger_id("/ocpp/CP%201") == "CP 1"


@pytest.mark.parametrize("target", ["/ocpp/..", "/ocpp/%2E%2E", "/ocpp/%2e", "/ocpp/Site%2F7", "/ocpp/%2F",
                                    "/ocpp/a%5Cb", "/ocpp/%2E%2E%2Fadmin"])
def test_path_steps_and_slashes_are_refused(target):
    err = refused(charger_id, target)
    assert err.status == 400
    assert "could not be reached through the API" in err.reason


@pytest.mark.parametrize("target", ["/ocpp/CP%E2%80%8B1", "/ocpp/CP%EE%80%801", "/ocpp/CP%0A1",
                                    "/ocpp/%E1%85%9F", "/ocpp/%E3%85%A4%EF%B8%8F"])  # Hangul fillers
def test_invisible_private_and_control_characters_are_refused(target):
    assert refused(charger_id, target).status == 400


def test_lookalike_ids_share_a_key():
    assert id_key("CP1") == id_key("\u0421\u04201")  # Cyrillic ES and ER
    assert id_key("CP1") == id_key("cp1")  # chargeBoxIdentity is case-insensitive
    assert id_key("CP1") == id_key("\uff23\uff30\uff11")  # full-width
    assert id_key("CP1") != id_key("CP2")
    assert id_key("CP-0001") != id_key("CP-0002")


def test_accounting_id():
    assert accounting_id("/ocpp/CP%201") == "CP 1"
    assert accounting_id("/ocpp/%2E%2E") == "%2E%2E"  # refused ids are counted by their raw segment
    assert len(accounting_id("/ocpp/" + "x" * 10_000)) == 2 * MAX_ID_LENGTH


@given(st.text(max_size=60))
def test_every_admitted_id_is_its_own_url_decoded_form(text):
    """Whatever a charger sends, what is admitted is a fixed point of the rules, and the same charger is
    found again from the id percent-encoded as a client would put it into a URL."""
    try:
        cp_id = check_id(text)
    except ValueError:
        return
    assert check_id(cp_id) == cp_id
    assert charger_id("/ocpp/" + quote(cp_id, safe="")) == cp_id
    assert cp_id not in (".", "..") and "/" not in cp_id and "\\" not in cp_id
    assert cp_id == cp_id.strip() and len(cp_id) <= MAX_ID_LENGTH
