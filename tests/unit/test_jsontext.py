"""JSON text for the hot path: orjson where it is installed, the standard library otherwise or when orjson refuses."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone

import pytest

from gateway import jsontext


BOTH = pytest.mark.parametrize("fast", [jsontext.orjson, None], ids=["orjson", "standard library"])


@BOTH
@pytest.mark.parametrize("value", [
    [{"timestamp": "2026-11-22T06:00:00Z", "sampledValue": [{"value": "1", "unit": "Wh"}]}],
    [{"timestamp": "é ✓ \u2028 \x1f \"quoted\" \\ /", "sampledValue": [{"value": 2.5, "x": [True, False, None]}]}],
    [{"big": 2**64, "small": -2**63, "float": 1e300, "tiny": 5e-324}],  # 2**64: orjson refuses, the library writes
    {"1": {"2": []}},
])
def test_json_text_is_compact_and_reads_back_the_same(value, fast, monkeypatch):
    monkeypatch.setattr(jsontext, "orjson", fast)
    text = jsontext.to_json(value)
    assert json.loads(text) == value
    assert len(text) <= len(json.dumps(value, ensure_ascii=False, separators=(",", ":")))  # compact
    assert "\\u00e9" not in text  # non-ASCII as is
    assert sqlite3.connect(":memory:").execute("SELECT json_valid(?)", (text,)).fetchone()[0] == 1


@BOTH
@pytest.mark.parametrize("value", [datetime(2026, 1, 1, tzinfo=timezone.utc), object()])
def test_what_the_standard_library_refuses_is_refused_with_orjson_too(value, fast, monkeypatch):
    monkeypatch.setattr(jsontext, "orjson", fast)
    with pytest.raises(TypeError):
        jsontext.to_json({"at": value})


def test_not_a_number_is_refused_rather_than_written_as_invalid_json(monkeypatch):
    monkeypatch.setattr(jsontext, "orjson", None)
    with pytest.raises(ValueError):
        jsontext.to_json([float("nan")])
