"""Two gateway nodes in one process on one PostgreSQL: ownership of chargers and commands carried between
nodes, counted at the charger."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.cluster.conftest import node_config
from tests.conftest import started
from tests.responder import answering
from tests.waiting import until


async def test_a_command_asked_of_the_other_node_reaches_the_charger_once(nursery: trio.Nursery, tmp_path: Path,
                                                                          pg_url: str) -> None:
    async with started(nursery, node_config(tmp_path, pg_url, "A")) as a, \
            started(nursery, node_config(tmp_path, pg_url, "B")) as b:
        async with answering(a.ocpp_port, "CP1") as cp, b.http() as http:
            await until(lambda: "CP1" in b.registry)  # B knows A holds it
            r = await http.get("/api/ocpp/reset/CP1", params={"type": "Soft"})
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "Accepted"
            assert [c[1:] for c in cp.received] == [["Reset", {"type": "Soft"}]]
            assert r.json()["requestId"] == cp.received[0][0]  # the unique id the charger saw
