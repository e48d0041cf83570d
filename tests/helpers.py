"""A bare charger for tests, and checks of the gateway's answers against the 1.6 schemas.

The schema check uses the `jsonschema` package, independent of the gateway's own
fastjsonschema validator.
"""

from __future__ import annotations

import json
import re
import uuid
from contextlib import asynccontextmanager
from functools import lru_cache
from importlib import resources
from typing import Any, AsyncIterator

import jsonschema
import trio
import trio_websocket


ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")  # the gateway's times


def assert_error(r, status: int, error: str) -> dict:
    """The one error envelope of API.md section 3; returns the body."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == error
    assert isinstance(body["message"], str) and body["message"]
    assert body["path"] == r.request.url.path
    assert ISO.match(body["timestamp"])
    return body


@lru_cache(maxsize=None)
def _schema(action: str, kind: str) -> dict:
    name = f"{action}Response.json" if kind == "response" else f"{action}.json"
    return json.loads(resources.files("ocpp.v16").joinpath("schemas", name).read_text("utf-8"))


def assert_schema_valid(action: str, payload: dict, kind: str = "response") -> None:
    jsonschema.validate(payload, _schema(action, kind))


class Charger:
    """Speaks raw OCPP-J over a trio-websocket client connection."""

    def __init__(self, ws: trio_websocket.WebSocketConnection):
        self.ws = ws
        self.inbox: list[list] = []  # frames received while waiting for something else

    async def send(self, frame: list | str) -> None:
        await self.ws.send_message(frame if isinstance(frame, str) else json.dumps(frame))

    async def receive(self, timeout: float = 5) -> list:
        with trio.fail_after(timeout):
            return json.loads(await self.ws.get_message())

    async def wait_for(self, unique_id: str, timeout: float = 5) -> list:
        """The reply with this unique id; other frames are kept in `inbox`."""
        for frame in self.inbox:
            if frame[1] == unique_id:
                self.inbox.remove(frame)
                return frame
        with trio.fail_after(timeout):
            while True:
                frame = json.loads(await self.ws.get_message())
                if frame[1] == unique_id:
                    return frame
                self.inbox.append(frame)

    async def call(self, action: str, payload: dict, timeout: float = 5) -> list:
        """Send a CALL and return the whole reply frame."""
        unique_id = str(uuid.uuid4())
        await self.send([2, unique_id, action, payload])
        return await self.wait_for(unique_id, timeout)

    async def result(self, action: str, payload: dict) -> dict:
        """Send a CALL, insist on a schema-valid CALLRESULT, return its payload."""
        reply = await self.call(action, payload)
        assert reply[0] == 3, f"{action} was answered {reply}"
        assert_schema_valid(action, reply[2])
        return reply[2]

    async def next_call(self, timeout: float = 5) -> list:
        """The next CALL the gateway sends."""
        for frame in self.inbox:
            if frame[0] == 2:
                self.inbox.remove(frame)
                return frame
        with trio.fail_after(timeout):
            while True:
                frame = json.loads(await self.ws.get_message())
                if frame[0] == 2:
                    return frame
                self.inbox.append(frame)


@asynccontextmanager
async def charger(port: int, cp_id: str = "CP1", subprotocols: list[str] | None = None,
                  path: str | None = None, headers: list[tuple[bytes, bytes]] | None = None) -> AsyncIterator[Charger]:
    subprotocols = ["ocpp1.6"] if subprotocols is None else subprotocols
    async with trio_websocket.open_websocket("127.0.0.1", port, path or f"/ocpp/{cp_id}", use_ssl=False,
                                             subprotocols=subprotocols, extra_headers=headers or []) as ws:
        yield Charger(ws)


BOOT = {"chargePointVendor": "TestVendor", "chargePointModel": "TestModel"}


def status(connector: int, state: str, **extra: Any) -> dict:
    return {"connectorId": connector, "status": state, "errorCode": "NoError", **extra}
