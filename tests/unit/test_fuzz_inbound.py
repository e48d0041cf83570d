"""Property tests: whatever text arrives, classify() decides without raising, and every CALL whose
unique id can be read is answered (a Request to handle, or a Refusal with a CALLERROR)."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.ocpp.actions import ALL_ACTIONS
from gateway.ocpp.errors import ErrorCode
from gateway.ocpp.frames import encode
from gateway.ocpp.inbound import BrokenReply, Refusal, Reply, Request, Unreadable, classify
from gateway.ocpp.validation import Validator

VALIDATOR = Validator()
CODES = {c.value for c in ErrorCode}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
actions = st.sampled_from(sorted(ALL_ACTIONS)) | st.text(max_size=15)
unique_ids = st.text(min_size=1, max_size=36).filter(lambda s: '"' not in s and "\\" not in s)
calls = st.tuples(st.just(2), unique_ids, actions, st.dictionaries(st.text(max_size=15), json_values, max_size=5))
frames = calls.map(list) | st.lists(json_values, max_size=6)


def _check(text: str, strict: bool) -> None:
    result = classify(text, VALIDATOR, strict)
    assert isinstance(result, (Request, Reply, Refusal, BrokenReply, Unreadable))
    if isinstance(result, Refusal):
        assert result.answer.code in CODES and result.answer.description
        encode(result.answer)  # the answer can be sent
    try:
        data = json.loads(text)
    except ValueError:
        return
    readable_call = (isinstance(data, list) and len(data) == 4 and data[0] == 2 and isinstance(data[1], str)
                     and 0 < len(data[1]) <= 36 and isinstance(data[2], str) and data[2]
                     and isinstance(data[3], dict))
    if readable_call:  # a well-formed CALL is always either handled or refused with its own id
        assert isinstance(result, (Request, Refusal))
        unique_id = result.call.unique_id if isinstance(result, Request) else result.answer.unique_id
        assert unique_id == data[1]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames, st.booleans())
def test_any_json_frame(frame, strict):
    _check(json.dumps(frame), strict)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=200), st.booleans())
def test_any_text(text, strict):
    _check(text, strict)


@settings(max_examples=300, deadline=None)
@given(calls, st.integers(min_value=0, max_value=80), st.booleans())
def test_truncated_and_mutated_calls(call, cut, strict):
    text = json.dumps(list(call))
    _check(text[:cut], strict)
    _check(text.replace('"', "'", 1), strict)
