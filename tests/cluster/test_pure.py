"""The cluster's pure parts: the notices between nodes and the outcomes carried back to the requester."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st

from gateway.chargepoint.errors import (CallErrorReceived, CallTimeout, ChargerUnderTest, NotConnected,
                                        NotSupported, TooManyCommands)
from gateway.cluster import notices
from gateway.cluster.notices import Done, Gone, LoginFailed, Owned, Queued, Revoked, Started
from gateway.cluster.outcomes import answer, stored

ids = st.text(min_size=1, max_size=60)
epochs = st.integers(min_value=1, max_value=2**62)


@given(st.one_of(st.builds(Queued, epochs), st.builds(Done, epochs), st.builds(Revoked, ids, epochs),
                 st.builds(Owned, ids, ids, epochs), st.builds(Gone, ids, epochs), st.builds(LoginFailed, ids, ids),
                 st.builds(Started, ids, epochs)))
def test_a_notice_reads_back_as_written(notice):
    payload = notices.encode(notice)
    assert payload is not None and len(payload.encode()) < 8000  # PostgreSQL's limit for a NOTIFY payload
    assert notices.decode(payload) == notice


@pytest.mark.parametrize("payload", ["", "not json", "[]", '{"k": "queued"}', '{"k": "queued", "id": "7"}',
                                     '{"k": "queued", "id": true}', '{"k": "later", "id": 1}',
                                     '{"k": "owned", "cp_id": "CP1", "node_id": 3, "epoch": 1}'])
def test_anything_else_on_the_channel_is_ignored(payload):
    assert notices.decode(payload) is None


def test_a_notice_too_long_to_send_is_not_sent():
    assert notices.encode(Owned("C" * 8000, "A", 1)) is None  # the sweep brings it instead


def test_each_node_listens_on_a_channel_postgresql_takes():
    channel = notices.channel_of("gateway-1.example.com:9000 \"quoted\"")
    assert channel.isidentifier() and len(channel) < 64  # NAMEDATALEN
    assert channel != notices.channel_of("gateway-2.example.com:9000")
    assert json.loads(notices.encode(Queued(5)) or "") == {"k": "queued", "id": 5}  # ids only, never data


@pytest.mark.parametrize("error", [
    CallErrorReceived("Reset", "NotSupported", "no", {"a": 1}),
    CallTimeout("Reset", 7.5, True), CallTimeout("Reset", 7.5, False),
    NotConnected("CP1"), TooManyCommands("CP1", 8), NotSupported("CP1", "Reset", "a YKC pile has no Reset"),
    ChargerUnderTest("CP1", "charger test run R1 (core) is using it"),
])
def test_the_requester_raises_what_the_owner_caught(error):
    outcome, data = stored(None, error)
    json.dumps(data)  # stored as jsonb
    with pytest.raises(type(error)) as raised:
        answer("CP1", "Reset", 30.0, outcome, data)
    assert str(raised.value) == str(error)
    assert vars(raised.value) == vars(error)


def test_an_answer_is_the_chargers_payload():
    assert answer("CP1", "Reset", 30.0, *stored({"status": "Accepted"}, None)) == {"status": "Accepted"}


def test_a_command_never_sent_or_lost_reads_as_a_time_out_that_says_whether_it_may_have_been_sent():
    with pytest.raises(CallTimeout) as expired:
        answer("CP1", "Reset", 12.0, "expired", None)
    assert expired.value.sent is False and expired.value.timeout == 12.0
    with pytest.raises(CallTimeout) as lost:
        answer("CP1", "Reset", 12.0, "lost", None)
    assert lost.value.sent is True


def test_a_lease_shorter_than_two_heartbeats_is_refused():
    from gateway.config import ConfigError, load
    with pytest.raises(ConfigError, match="lease_seconds must be at least twice"):
        load(None, env={}, overrides={"cluster": {"lease_seconds": 3.0, "heartbeat_seconds": 2.0}})
    config = load(None, env={"GATEWAY_CLUSTER_NODE_ID": "node7", "GATEWAY_CLUSTER_LEASE_SECONDS": "4"},
                  overrides={"db": "postgresql://gateway@db/gateway"})
    assert (config.cluster.node_id, config.cluster.lease_seconds) == ("node7", 4.0)
    assert config.cluster.url(config.db) == "postgresql://gateway@db/gateway"
    assert config.cluster.url("data/gateway.db") == ""  # one gateway on a file: no cluster


def test_a_node_is_named_after_its_host_and_ocpp_port_unless_told():
    import socket
    assert notices.default_node_id("0.0.0.0:9000") == f"{socket.gethostname()}:9000"
    assert notices.default_node_id("[::]:19000").endswith(":19000")
