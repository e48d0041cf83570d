"""JSON text for the hot path: orjson where it is installed, the standard library otherwise or when orjson refuses."""

from __future__ import annotations

import json
import sqlite3

import pytest

from gateway import jsontext


@pytest.mark.parametrize("fast", [jsontext._fast_dumps, None], ids=["orjson", "standard library"])
@pytest.mark.parametrize("value", [
    [{"timestamp": "2026-11-22T06:00:00Z", "sampledValue": [{"value": "1", "unit": "Wh"}]}],
    [{"timestamp": "é ✓ \u2028 \x1f \"quoted\" \\ /", "sampledValue": [{"value": 2.5, "x": [True, False, None]}]}],
    [{"big": 2**64, "small": -2**63, "float": 1e300, "tiny": 5e-324}],  # 2**64: orjson refuses, the library writes
    {"1": {"2": []}},
])
def test_json_text_is_compact_and_reads_back_the_same(value, fast, monkeypatch):
    monkeypatch.setattr(jsontext, "_fast_dumps", fast)
    text = jsontext.to_json(value)
    assert json.loads(text) == value
    assert len(text) <= len(json.dumps(value, ensure_ascii=False, separators=(",", ":")))  # compact
    assert "\\u00e9" not in text  # non-ASCII as is
    assert sqlite3.connect(":memory:").execute("SELECT json_valid(?)", (text,)).fetchone()[0] == 1
