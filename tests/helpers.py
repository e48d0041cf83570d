"""A bare charger for tests, and checks of the gateway's answers against the 1.6 schemas.

The schema check uses the `jsonschema` package, independent of the gateway's own
fastjsonschema validator.
"""

from __future__ import annotations

import json
import re
from contextlib import asynccontextmanager
from functools import lru_cache
from importlib import resources
from typing import Any, AsyncIterator

import jsonschema
import trio
import trio_websocket

from gateway.ocpp.connection import Answered, Connection, Event, Failed, Request, Role, Unmatched
from gateway.ocpp.frames import CallResult


ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")  # the gateway's times


def assert_error(r, status: int, error: str) -> dict:
    """The one error envelope of docs/api.md section 3; returns the body."""
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


def as_list(event: Event, text: str) -> list:
    """The frame an event was read from, as the JSON array the tests look at."""
    if isinstance(event, Request):
        return [2, event.call.unique_id, event.call.action, event.call.payload]
    if isinstance(event, Answered):
        return [3, event.unique_id, event.payload]
    if isinstance(event, Failed) and not event.malformed:
        return [4, event.unique_id, event.code, event.description, event.details]
    if isinstance(event, Unmatched):
        frame = event.frame
        if isinstance(frame, CallResult):
            return [3, frame.unique_id, frame.payload]
        return [4, frame.unique_id, frame.code, frame.description, frame.details]
    return json.loads(text)  # what the charger's end refuses or cannot read: the tests see it as sent


class Charger:
    """Speaks OCPP-J over a trio-websocket client connection, through the charger end of a Connection.

    `send()` stays raw: any list or text (malformed too) goes out as is, outside the connection's
    bookkeeping, so a test may send what no compliant charger would.
    """

    def __init__(self, ws: trio_websocket.WebSocketConnection):
        self.ws = ws
        self.conn = Connection(Role.CHARGER, strict=False)
        self.inbox: list[list] = []  # frames received while waiting for something else
        self.calling = trio.Lock()  # one CALL of ours in flight (OCPP-J 4.1.1): the others queue

    async def send(self, frame: list | str) -> None:
        await self.ws.send_message(frame if isinstance(frame, str) else json.dumps(frame))

    async def read(self) -> list:
        """The next frame from the gateway, whatever it is."""
        text = await self.ws.get_message()
        return as_list(self.conn.receive(text), text)

    async def receive(self, timeout: float = 5) -> list:
        with trio.fail_after(timeout):
            return await self.read()

    async def wait_for(self, unique_id: str, timeout: float = 5) -> list:
        """The reply with this unique id; other frames are kept in `inbox`."""
        for frame in self.inbox:
            if frame[1] == unique_id:
                self.inbox.remove(frame)
                return frame
        with trio.fail_after(timeout):
            while True:
                frame = await self.read()
                if frame[1] == unique_id:
                    return frame
                self.inbox.append(frame)

    async def call(self, action: str, payload: dict, timeout: float = 5) -> list:
        """Send a CALL and return the whole reply frame."""
        async with self.calling:
            out = self.conn.send_call(action, payload)
            try:
                await self.ws.send_message(out.text)
                return await self.wait_for(out.unique_id, timeout)
            finally:
                self.conn.forget(out.unique_id)

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
                frame = await self.read()
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


async def offline(store: Any, cp_id: str) -> dict | None:
    """The charger's record once it says offline and why (the disconnection is written off the chargers' path, a
    moment after the registry lets the charger go; in a cluster, the release of its connection may say offline
    a moment before the session's record says why): for `until`."""
    stored = await store.chargers.get(cp_id)
    return stored if stored is not None and stored["online"] == 0 and stored["disconnect_reason"] else None


def status(connector: int, state: str, **extra: Any) -> dict:
    return {"connectorId": connector, "status": state, "errorCode": "NoError", **extra}
