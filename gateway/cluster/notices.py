"""What the nodes of a cluster tell each other through PostgreSQL's NOTIFY: ids and names only, never data.

A payload must stay under 8,000 bytes and notifying commits share a lock, so a notice only wakes a node up:
the command, its answer or the owner of a charger is read from its table. Pure: parsed and written here,
sent and received by the node (node.py) and the store (gateway/store/cluster.py).
"""

from __future__ import annotations

import hashlib
import json
import socket
from typing import Union

import attrs

BROADCAST = "gateway_cluster"  # every node listens: who holds which charger now
MAX_PAYLOAD = 7900  # bytes; PostgreSQL refuses 8000 and more


def channel_of(node_id: str) -> str:
    """The LISTEN channel of a node: an identifier PostgreSQL takes whatever the node's id holds."""
    return "gateway_node_" + hashlib.sha256(node_id.encode()).hexdigest()[:24]


def default_node_id(ocpp_address: str) -> str:
    """A node's id when the configuration names none: this machine's host name and the OCPP port."""
    port = ocpp_address.rpartition(":")[2]
    return f"{socket.gethostname()}:{port}"


@attrs.frozen
class Queued:
    """To the owner: a command for one of its chargers waits in cluster_commands."""

    id: int


@attrs.frozen
class Done:
    """To the requester: the command it queued is done (answered, or why not)."""

    id: int


@attrs.frozen
class Revoked:
    """To the previous owner: a newer connection of the charger (epoch) was made on another node."""

    cp_id: str
    epoch: int


@attrs.frozen
class Owned:
    """To every node: the charger is now connected to `node_id` (connection `epoch`)."""

    cp_id: str
    node_id: str
    epoch: int


@attrs.frozen
class Gone:
    """To every node: the connection `epoch` of the charger ended."""

    cp_id: str
    epoch: int


@attrs.frozen
class LoginFailed:
    """To every node: a login from `address` failed on `node_id` (each node throttles the address the same)."""

    address: str
    node_id: str


@attrs.frozen
class Started:
    """To every node: the remote start `request_id`, carried for another node, started `transaction_id`."""

    request_id: str
    transaction_id: int


Notice = Union[Queued, Done, Revoked, Owned, Gone, LoginFailed, Started]
_KINDS: dict[str, type] = {"queued": Queued, "done": Done, "revoked": Revoked, "owned": Owned, "gone": Gone,
                           "login_failed": LoginFailed, "started": Started}
_NAMES = {kind: name for name, kind in _KINDS.items()}
_FIELDS = {Queued: {"id": int}, Done: {"id": int}, Revoked: {"cp_id": str, "epoch": int},
           Owned: {"cp_id": str, "node_id": str, "epoch": int}, Gone: {"cp_id": str, "epoch": int},
           LoginFailed: {"address": str, "node_id": str}, Started: {"request_id": str, "transaction_id": int}}


def encode(notice: Notice) -> str | None:
    """The payload of a notice; None when it would be too long to send (a charger id of kilobytes): the nodes
    then learn it from their sweep, a few seconds later."""
    text = json.dumps({"k": _NAMES[type(notice)], **attrs.asdict(notice)}, separators=(",", ":"))
    return text if len(text.encode()) <= MAX_PAYLOAD else None


def decode(payload: str) -> Notice | None:
    """The notice a payload carries; None for anything else (another program on the channel, a newer node's
    notice this one does not know): ignored, never fatal."""
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    kind = _KINDS.get(data.get("k")) if isinstance(data, dict) else None
    if kind is None:
        return None
    fields = _FIELDS[kind]
    values = {name: data.get(name) for name in fields}
    if not all(type(values[name]) is t for name, t in fields.items()):
        return None
    return kind(**values)
