"""Charge points: connection state, device info, connectors, protocol violations."""

from __future__ import annotations

import json
import sqlite3
from typing import Any, NamedTuple

import structlog

from ..chargepoint.handshake import id_key  # pure: the one home of the id rules, kept with the handshake
from .calls import COMMITTED, Table, durability
from .health import StoreUnavailable
from .paging import Filters, page as page_of
from .registry import charger_where
from .scope import Scope

log = structlog.get_logger("gateway.store")

DEVICE_FIELDS = {
    # BootNotification field -> column
    "chargePointVendor": "vendor",
    "chargePointModel": "model",
    "chargePointSerialNumber": "serial_number",
    "chargeBoxSerialNumber": "charge_box_serial_number",
    "firmwareVersion": "firmware_version",
    "iccid": "iccid",
    "imsi": "imsi",
    "meterType": "meter_type",
    "meterSerialNumber": "meter_serial_number",
}


class Connected(NamedTuple):
    """What recording a connection found out, read in the same transaction."""
    adopted: bool  # the charger had no registry entry: one was added
    out_of_service: str | None  # why the operator keeps it Inoperative (see out_of_service), or None
    registration: str | None  # how its last BootNotification was answered (None: it never booted)


def out_of_service(enabled: int | bool, operator_status: str) -> str | None:
    """Why a registry entry keeps its charger Inoperative ("disabled", "maintenance", "retired"), or None."""
    if not enabled:
        return "disabled"
    return None if operator_status == "in_service" else operator_status


def _availability(conn: sqlite3.Connection, cp_id: str) -> str | None:
    """Why the charger is kept out of service, or None (also for a charger the registry does not hold)."""
    row = conn.execute("SELECT enabled, operator_status FROM charger_registry WHERE charge_point_id = ?",
                       (cp_id,)).fetchone()
    return out_of_service(*row) if row else None


def _connected(conn: sqlite3.Connection, cp_id: str, address: str, subprotocol: str | None, at: str) -> Connected:
    conn.execute(
        """INSERT INTO charge_points (id, online, first_seen, last_seen, connected_at, remote_address, subprotocol,
                                     id_key)
           VALUES (?, 1, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET online = 1, last_seen = excluded.last_seen,
               connected_at = excluded.connected_at, remote_address = excluded.remote_address,
               subprotocol = excluded.subprotocol""",
        (cp_id, at, at, at, address, subprotocol, id_key(cp_id)),
    )
    # A charger the registry does not hold is adopted: whatever unknown_chargers says, the operator sees it.
    adopted = conn.execute(
        """INSERT INTO charger_registry (charge_point_id, adopted, created_at, updated_at) VALUES (?, 1, ?, ?)
           ON CONFLICT (charge_point_id) DO NOTHING""", (cp_id, at, at)).rowcount == 1
    registration = conn.execute("SELECT registration_status FROM charge_points WHERE id = ?", (cp_id,)).fetchone()
    return Connected(adopted, _availability(conn, cp_id), registration[0])


def _disconnected(conn: sqlite3.Connection, cp_id: str, reason: str, at: str) -> None:
    conn.execute(
        "UPDATE charge_points SET online = 0, disconnected_at = ?, disconnect_reason = ? WHERE id = ?",
        (at, reason, cp_id),
    )


def _all_offline(conn: sqlite3.Connection, reason: str, at: str) -> int:
    return conn.execute(
        "UPDATE charge_points SET online = 0, disconnected_at = ?, disconnect_reason = ? WHERE online = 1",
        (at, reason),
    ).rowcount


class Registration(NamedTuple):
    """What decides how a charger's BootNotification is answered."""
    status: str | None  # as last answered, or as the operator set it (None: never)
    decided: bool  # the operator set it (PUT /api/chargers/{cpId}/registration): it wins
    registered: bool  # the operator registered the charger (a registry entry not adopted): it is known


def _registration(conn: sqlite3.Connection, cp_id: str) -> Registration:
    row = conn.execute(
        """SELECT cp.registration_status, cp.registration_decided, r.adopted = 0
           FROM (SELECT ? AS id) AS asked LEFT JOIN charge_points AS cp ON cp.id = asked.id
           LEFT JOIN charger_registry AS r ON r.charge_point_id = asked.id""", (cp_id,)).fetchone()
    return Registration(row[0], bool(row[1]), bool(row[2]))


def _boot(conn: sqlite3.Connection, cp_id: str, device: dict[str, Any], extra: dict[str, Any] | None,
          status: str, at: str) -> str | None:
    """Record the boot and the answer it gets; return why the charger is kept out of service, or None."""
    columns = [DEVICE_FIELDS[k] for k in DEVICE_FIELDS]
    values = [device.get(k) for k in DEVICE_FIELDS]
    sets = ", ".join(f"{c} = ?" for c in columns)
    conn.execute(
        f"UPDATE charge_points SET {sets}, extra = ?, registration_status = ?, booted_at = ?, last_seen = ? WHERE id = ?",
        (*values, json.dumps(extra, ensure_ascii=False) if extra else None, status, at, at, cp_id),
    )
    return _availability(conn, cp_id)


def _status(conn: sqlite3.Connection, cp_id: str, connector_id: int, status: str, error_code: str | None,
            info: str | None, vendor_id: str | None, vendor_error_code: str | None,
            timestamp: str | None, at: str) -> None:
    row = (cp_id, connector_id, status, error_code, info, vendor_id, vendor_error_code, timestamp, at)
    conn.execute(
        """INSERT INTO connectors (charge_point_id, connector_id, status, error_code, info, vendor_id,
                                   vendor_error_code, timestamp, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (charge_point_id, connector_id) DO UPDATE SET status = excluded.status,
               error_code = excluded.error_code, info = excluded.info, vendor_id = excluded.vendor_id,
               vendor_error_code = excluded.vendor_error_code, timestamp = excluded.timestamp,
               updated_at = excluded.updated_at""",
        row,
    )
    conn.execute(
        """INSERT INTO status_notifications (charge_point_id, connector_id, status, error_code, info,
                                             vendor_id, vendor_error_code, timestamp, received_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        row,
    )


def _violation(conn: sqlite3.Connection, cp_id: str, action: str, kind: str, code: str, path: str,
               message: str, example: str, at: str) -> None:
    """Record a protocol violation (not awaited: it rides on the next commit)."""
    conn.execute(
        """INSERT INTO violations (charge_point_id, action, kind, code, path, message, example, first_seen, last_seen)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (charge_point_id, action, kind, code, path) DO UPDATE SET
               count = violations.count + 1, message = excluded.message, example = excluded.example,
               last_seen = excluded.last_seen""",
        (cp_id, action, kind, code, path, message, example[:2000], at, at),
    )


def _with_details(conn: sqlite3.Connection, rows: list[sqlite3.Row]) -> list[dict[str, Any]]:
    """Chargers with their connectors and open transaction: three queries however many chargers."""
    chargers = {row["id"]: dict(row, connectors=[], current_transaction_id=None) for row in rows}
    ids = json.dumps(list(chargers))
    for c in conn.execute("SELECT * FROM connectors WHERE charge_point_id IN (SELECT value FROM json_each(?)) "
                          "ORDER BY charge_point_id, connector_id", (ids,)):
        chargers[c["charge_point_id"]]["connectors"].append(dict(c))
    for cp_id, tx_id in conn.execute(
            "SELECT charge_point_id, MAX(id) FROM transactions WHERE stopped_at IS NULL "
            "AND charge_point_id IN (SELECT value FROM json_each(?)) GROUP BY charge_point_id", (ids,)):
        chargers[cp_id]["current_transaction_id"] = tx_id
    for cp in chargers.values():
        cp["extra"] = json.loads(cp["extra"]) if cp["extra"] else None
        cp["has_authorization_key"] = cp.pop("authorization_key") is not None  # the hash stays in the store
    return list(chargers.values())


def _get(conn: sqlite3.Connection, cp_id: str, *, scope: Scope) -> dict[str, Any] | None:
    where, args = charger_where(scope, "id")
    row = conn.execute(f"SELECT * FROM charge_points WHERE id = ? AND {where}", (cp_id, *args)).fetchone()
    return _with_details(conn, [row])[0] if row else None


def _list(conn: sqlite3.Connection, *, scope: Scope) -> list[dict[str, Any]]:
    where, args = charger_where(scope, "id")
    rows = conn.execute(f"SELECT * FROM charge_points WHERE {where} ORDER BY online DESC, id", args).fetchall()
    return _with_details(conn, rows)


def _page(conn: sqlite3.Connection, online: bool | None = None, page: int = 1, size: int = 50,
          *, scope: Scope) -> dict:
    filters = Filters()
    filters.within(charger_where(scope, "id"))
    filters.add("online = ?", None if online is None else int(online))
    result = page_of(conn, "charge_points", filters, "online DESC, id", page, size, lambda row: row)
    return {**result, "records": _with_details(conn, result["records"])}


def _violations(conn: sqlite3.Connection, cp_id: str, *, scope: Scope) -> list[dict[str, Any]]:
    where, args = charger_where(scope, "charge_point_id")
    return [dict(r) for r in conn.execute(
        f"SELECT * FROM violations WHERE charge_point_id = ? AND {where} ORDER BY last_seen DESC", (cp_id, *args)
    )]


def _security(conn: sqlite3.Connection, cp_id: str) -> tuple[int, str | None]:
    """(security profile, hashed AuthorizationKey or None); (0, None) for a charger never seen."""
    row = conn.execute("SELECT security_profile, authorization_key FROM charge_points WHERE id = ?",
                       (cp_id,)).fetchone()
    return (row[0], row[1]) if row else (0, None)


def _register(conn: sqlite3.Connection, cp_id: str, at: str) -> None:
    conn.execute("INSERT INTO charge_points (id, first_seen, id_key) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                 (cp_id, at, id_key(cp_id)))


class Known(NamedTuple):
    """What a handshake needs to know about a charge point id."""
    exists: bool
    security_profile: int
    key_hash: str | None  # the hashed AuthorizationKey
    lookalike: str | None  # for an unknown id: a known charger whose id looks the same


def _admission(conn: sqlite3.Connection, cp_id: str) -> Known:
    """Whether the id is known, its security, and for a new id a known charger it looks like."""
    row = conn.execute("SELECT security_profile, authorization_key FROM charge_points WHERE id = ?",
                       (cp_id,)).fetchone()
    if row:
        return Known(True, row[0], row[1], None)
    unkeyed = conn.execute("SELECT id FROM charge_points WHERE id_key IS NULL").fetchall()
    conn.executemany("UPDATE charge_points SET id_key = ? WHERE id = ?", [(id_key(i), i) for (i,) in unkeyed])
    other = conn.execute("SELECT id FROM charge_points WHERE id_key = ? ORDER BY id LIMIT 1",
                         (id_key(cp_id),)).fetchone()
    return Known(False, 0, None, other[0] if other else None)


def _set_security(conn: sqlite3.Connection, cp_id: str, profile: int | None, key_hash: str | None, at: str) -> None:
    """Set the profile and/or the key (None leaves it); a charger not seen yet is registered."""
    _register(conn, cp_id, at)
    if profile is not None:
        conn.execute("UPDATE charge_points SET security_profile = ? WHERE id = ?", (profile, cp_id))
    if key_hash is not None:
        conn.execute("UPDATE charge_points SET authorization_key = ? WHERE id = ?", (key_hash, cp_id))


def _set_registration(conn: sqlite3.Connection, cp_id: str, status: str, at: str) -> None:
    """Decide how the charger's next BootNotification is answered (also before it first connects)."""
    _register(conn, cp_id, at)
    conn.execute("UPDATE charge_points SET registration_status = ?, registration_decided = 1 WHERE id = ?",
                 (status, cp_id))


def _set_availability(conn: sqlite3.Connection, cp_id: str, enabled: bool | None, operator_status: str | None,
                      at: str) -> bool:
    """Enable or disable the charger's registry entry and/or set its operator status (None leaves it);
    False if the registry does not hold the charger."""
    return conn.execute(
        """UPDATE charger_registry SET enabled = COALESCE(?, enabled), operator_status = COALESCE(?, operator_status),
               updated_at = ? WHERE charge_point_id = ?""",
        (None if enabled is None else int(enabled), operator_status, at, cp_id)).rowcount == 1


class Chargers(Table, batched=dict(violation=_violation), committed=dict(
        disconnected=_disconnected, all_offline=_all_offline, registration=_registration, boot=_boot, status=_status,
        get=_get, list=_list, page=_page, violations=_violations, security=_security, admission=_admission,
        set_security=_set_security, set_registration=_set_registration)):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Why each charger is kept out of service, as last read: a remote start asks before it is sent, and a
        # database round trip there cost 1.5-2 ms at p50 (remoteStart at 1,000 msg/s of background). Every
        # change goes through this store (set_availability, the registry's update and delete), which forgets.
        self._out_of_service: dict[str, str | None] = {}
        self._changes = 0  # a read that raced a change is not kept

    @durability(COMMITTED)
    async def availability(self, cp_id: str) -> str | None:
        """Why the charger is kept out of service, or None (also for a charger the registry does not hold)."""
        if cp_id in self._out_of_service:
            return self._out_of_service[cp_id]
        changes = self._changes
        why = await self._db.run(_availability, cp_id)
        if changes == self._changes:
            self._out_of_service[cp_id] = why
        return why

    def _forget_availability(self, cp_id: str | None = None) -> None:
        """A registry entry changed (cp_id None: one the caller cannot name): read it again when asked."""
        self._changes += 1
        if cp_id is None:
            self._out_of_service.clear()
        else:
            self._out_of_service.pop(cp_id, None)

    @durability(COMMITTED)
    async def set_availability(self, cp_id: str, enabled: bool | None, operator_status: str | None, at: str) -> bool:
        """Committed: see _set_availability."""
        try:
            return await self._db.run(_set_availability, cp_id, enabled, operator_status, at)
        finally:
            self._forget_availability(cp_id)

    @durability(COMMITTED)
    async def connected(self, cp_id: str, address: str, subprotocol: str | None, at: str) -> Connected:
        """Record a connection (committed), adopting a charger the registry does not hold. While the file takes no writes the charger is served all the same
        (its messages are answered, or refused, one by one) and this record is left out, with a warning:
        who is online is the registry's to say, and the next connection records it again (and adopts it)."""
        try:
            return await self._db.run(_connected, cp_id, address, subprotocol, at)
        except StoreUnavailable as exc:
            log.warning("connection not recorded", cp=cp_id, reason=str(exc))
            return Connected(False, None, None)

