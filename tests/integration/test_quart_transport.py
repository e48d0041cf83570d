"""The HTTP port's charger transport: a send cancelled while it waits must not corrupt the next one.

Hypercorn offers permessage-deflate and compresses a message before it queues for its own
send lock; a send cancelled in that queue (a command's time-out, its HTTP request gone) would
leave the compressor's history ahead of what the charger received, and the charger would
decode every later message into garbage. QuartTransport queues before anything is compressed.
"""

from __future__ import annotations

import os

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from quart import websocket
from quart_trio import QuartTrio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage
from wsproto.extensions import PerMessageDeflate

from gateway.chargepoint.transport import QuartTransport

MESSAGE = '[2,"2b1c6a0e-1111-2222-3333-444455556666","Reset",{"type":"Soft"}]'
BIG = "B" + os.urandom(6_000_000).hex()  # compresses badly: fills the socket while the charger does not read


def _app() -> QuartTrio:
    app = QuartTrio(__name__)

    @app.websocket("/ws")
    async def ws() -> None:
        transport = QuartTransport(websocket._get_current_object())
        await websocket.accept()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(transport.send, BIG)
            await trio.sleep(0.3)  # the big message now holds Hypercorn's send
            with trio.move_on_after(0.3) as waited:
                await transport.send(MESSAGE)
            assert waited.cancelled_caught
        await transport.send(MESSAGE)
        await trio.sleep(5)

    return app


async def test_a_cancelled_send_leaves_the_next_message_intact(nursery):
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.websocket_max_message_size = 100_000_000
    binds = await nursery.start(serve, _app(), config)
    stream = await trio.open_tcp_stream("127.0.0.1", int(binds[0].rsplit(":", 1)[1]))
    client = WSConnection(ConnectionType.CLIENT)
    await stream.send_all(client.send(Request(host="x", target="/ws", extensions=[PerMessageDeflate()])))
    received, parts, extensions = [], [], []
    slow = True
    with trio.fail_after(30):
        while len(received) < 2:
            if extensions and slow:  # a charger slow to read: the big message blocks the socket meanwhile
                await trio.sleep(1.0)
                slow = False
            client.receive_data(await stream.receive_some(65536))
            for event in client.events():
                if isinstance(event, AcceptConnection):
                    extensions = [e.name for e in event.extensions]
                elif isinstance(event, TextMessage):
                    parts.append(event.data)
                    if event.message_finished:
                        received.append("".join(parts))
                        parts.clear()
    assert extensions == ["permessage-deflate"]
    assert received[0] == BIG
    assert received[1] == MESSAGE  # the cancelled one never went out; the next one is whole
