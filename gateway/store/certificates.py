"""The certificate authority's keys, the certificates it issued, those installed on chargers and what chargers
report, and signed firmware files (migration 019).

The authority is the platform's and is read by the gateway only (the key column never leaves the store's
callers in gateway/certificates/). A charger's certificates belong to the charger's tenant: every read or
change of them is scoped (scope.py), through the charger registry.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from .calls import Table
from .paging import Filters, page
from .scope import Scope

# A charger's records with the charger's tenant (a charger with no registry row is the platform's).
_WITH_TENANT = ("(SELECT c.*, r.tenant_id AS tenant_id FROM {table} c "
                "LEFT JOIN charger_registry r ON r.charge_point_id = c.charge_point_id) AS c")
ISSUED = _WITH_TENANT.format(table="issued_certificates")
INSTALLED = _WITH_TENANT.format(table="installed_certificates")
REPORTED = _WITH_TENANT.format(table="reported_certificates")


# ---- the authority (the platform's) ----------------------------------------------------------

def _authority(conn: sqlite3.Connection, role: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM certificate_authority WHERE role = ?", (role,)).fetchone()
    return dict(row) if row else None


def _set_authority(conn: sqlite3.Connection, role: str, certificate_pem: str, chain_pem: str, key_pem: str,
                   imported: bool, at: str, replace: bool) -> bool:
    """Keep a signing key; False (nothing changed) when the role has one and `replace` is not set."""
    if not replace and _authority(conn, role) is not None:
        return False
    conn.execute("INSERT INTO certificate_authority (role, certificate_pem, chain_pem, key_pem, imported, created_at) "
                 "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (role) DO UPDATE SET certificate_pem = excluded.certificate_pem, "
                 "chain_pem = excluded.chain_pem, key_pem = excluded.key_pem, imported = excluded.imported, "
                 "created_at = excluded.created_at", (role, certificate_pem, chain_pem, key_pem, int(imported), at))
    return True


# ---- issued certificates ---------------------------------------------------------------------

def _record_issued(conn: sqlite3.Connection, serial: str, cp_id: str, subject: str, key_type: str, not_before: str,
                   not_after: str, certificate_pem: str, at: str) -> None:
    conn.execute("INSERT INTO issued_certificates (serial, charge_point_id, subject, key_type, not_before, not_after, "
                 "certificate_pem, issued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                 (serial, cp_id, subject, key_type, not_before, not_after, certificate_pem, at))


def _delivered(conn: sqlite3.Connection, serial: str, delivery: str) -> None:
    conn.execute("UPDATE issued_certificates SET delivery = ? WHERE serial = ?", (delivery, serial))


def _issued(conn: sqlite3.Connection, cp_id: str | None, expiring_before: str | None, revoked: bool | None,
            number: int, size: int, *, scope: Scope) -> dict[str, Any]:
    """A page of issued certificates, newest first; expiring_before: only those still valid (not revoked)
    that end before this time."""
    where, args = scope.where("tenant_id")
    filters = Filters()
    filters.clauses.append(where)
    filters.args.extend(args)
    filters.add("charge_point_id = ?", cp_id)
    if expiring_before is not None:
        filters.add("not_after < ?", expiring_before)
        revoked = False
    if revoked is not None:
        filters.clauses.append("revoked_at IS NOT NULL" if revoked else "revoked_at IS NULL")
    return page(conn, ISSUED, filters, "issued_at DESC, serial", number, size)


def _issued_one(conn: sqlite3.Connection, serial: str, *, scope: Scope) -> dict[str, Any] | None:
    where, args = scope.where("tenant_id")
    row = conn.execute(f"SELECT * FROM {ISSUED} WHERE serial = ? AND {where}", (serial, *args)).fetchone()
    return dict(row) if row else None


def _revoke(conn: sqlite3.Connection, serial: str, reason: str | None, at: str, *,
            scope: Scope) -> dict[str, Any] | None:
    """Revoke (once: a second revocation keeps the first's time and reason); None when not known in scope."""
    if _issued_one(conn, serial, scope=scope) is None:
        return None
    conn.execute("UPDATE issued_certificates SET revoked_at = ?, revocation_reason = ? "
                 "WHERE serial = ? AND revoked_at IS NULL", (at, reason, serial))
    return _issued_one(conn, serial, scope=scope)


def _is_revoked(conn: sqlite3.Connection, serial: str) -> bool:
    """Whether the gateway issued this certificate and revoked it (the profile-3 listener asks)."""
    row = conn.execute("SELECT revoked_at FROM issued_certificates WHERE serial = ?", (serial,)).fetchone()
    return row is not None and row[0] is not None


def _expiring_count(conn: sqlite3.Connection, before: str) -> int:
    """How many issued certificates, not revoked, end before `before` (a platform-wide count)."""
    return conn.execute("SELECT COUNT(*) FROM issued_certificates WHERE revoked_at IS NULL AND not_after < ?",
                        (before,)).fetchone()[0]


# ---- installed and reported certificates -----------------------------------------------------

def _installed_add(conn: sqlite3.Connection, cp_id: str, certificate_type: str, certificate_pem: str, subject: str,
                   serial: str, not_after: str, status: str, at: str) -> int:
    cur = conn.execute("INSERT INTO installed_certificates (charge_point_id, certificate_type, certificate_pem, "
                       "subject, serial, not_after, status, installed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                       (cp_id, certificate_type, certificate_pem, subject, serial, not_after, status, at))
    return cur.fetchone()[0]


def _installed(conn: sqlite3.Connection, cp_id: str, certificate_type: str | None, *,
               scope: Scope) -> list[dict[str, Any]]:
    """The certificates the gateway installed on the charger and the charger accepted, oldest first."""
    where, args = scope.where("tenant_id")
    rows = conn.execute(f"SELECT * FROM {INSTALLED} WHERE charge_point_id = ? AND status = 'Accepted' AND {where} "
                        "AND certificate_type = coalesce(?, certificate_type) ORDER BY id",
                        (cp_id, *args, certificate_type))
    return [dict(r) for r in rows]


def _installed_one(conn: sqlite3.Connection, cp_id: str, certificate_id: int, *,
                   scope: Scope) -> dict[str, Any] | None:
    where, args = scope.where("tenant_id")
    row = conn.execute(f"SELECT * FROM {INSTALLED} WHERE id = ? AND charge_point_id = ? AND status = 'Accepted' "
                       f"AND {where}", (certificate_id, cp_id, *args)).fetchone()
    return dict(row) if row else None


def _installed_removed(conn: sqlite3.Connection, cp_id: str, serials: list[str]) -> int:
    """Forget the installed certificates with these serials (the charger deleted them); how many were."""
    cur = conn.executemany("UPDATE installed_certificates SET status = 'Deleted' WHERE charge_point_id = ? "
                           "AND serial = ? AND status = 'Accepted'", [(cp_id, s) for s in serials])
    return cur.rowcount


def _reported(conn: sqlite3.Connection, cp_id: str, certificate_type: str, status: str,
              hash_data: list[dict[str, Any]], at: str) -> None:
    conn.execute("INSERT INTO reported_certificates (charge_point_id, certificate_type, status, hash_data, reported_at) "
                 "VALUES (?, ?, ?, ?, ?) ON CONFLICT (charge_point_id, certificate_type) DO UPDATE SET "
                 "status = excluded.status, hash_data = excluded.hash_data, reported_at = excluded.reported_at",
                 (cp_id, certificate_type, status, json.dumps(hash_data), at))


def _reports(conn: sqlite3.Connection, cp_id: str, *, scope: Scope) -> list[dict[str, Any]]:
    where, args = scope.where("tenant_id")
    rows = conn.execute(f"SELECT * FROM {REPORTED} WHERE charge_point_id = ? AND {where} ORDER BY certificate_type",
                        (cp_id, *args))
    return [dict(r, hash_data=json.loads(r["hash_data"])) for r in rows]


# ---- signed firmware files -------------------------------------------------------------------

_FIRMWARE_FIELDS = ("id, tenant_id, name, sha256, size, source_url, signature, signing_certificate_pem, created_at, "
                    "content IS NOT NULL AS served")


def _firmware_add(conn: sqlite3.Connection, name: str, sha256: str, size: int, content: bytes | None,
                  source_url: str | None, signature: str, signing_certificate_pem: str, at: str, *,
                  scope: Scope) -> dict[str, Any]:
    cur = conn.execute("INSERT INTO firmware_files (tenant_id, name, sha256, size, content, source_url, signature, "
                       "signing_certificate_pem, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                       (scope.tenant_id, name, sha256, size, content, source_url, signature, signing_certificate_pem,
                        at))
    return _firmware(conn, cur.fetchone()[0], scope=scope)


def _firmware(conn: sqlite3.Connection, firmware_id: int, *, scope: Scope) -> dict[str, Any] | None:
    where, args = scope.where("tenant_id")
    row = conn.execute(f"SELECT {_FIRMWARE_FIELDS} FROM firmware_files WHERE id = ? AND {where}",
                       (firmware_id, *args)).fetchone()
    return dict(row) if row else None


def _firmware_list(conn: sqlite3.Connection, number: int, size: int, *, scope: Scope) -> dict[str, Any]:
    where, args = scope.where("tenant_id")
    filters = Filters()
    filters.clauses.append(where)
    filters.args.extend(args)
    return page(conn, f"(SELECT {_FIRMWARE_FIELDS} FROM firmware_files) AS f", filters, "id DESC", number, size)


def _firmware_content(conn: sqlite3.Connection, firmware_id: int, sha256: str) -> tuple[str, bytes] | None:
    """(name, content) of an uploaded file, for the download a charger makes: its address names the file's
    SHA-256, so only who was given the address can fetch it."""
    row = conn.execute("SELECT name, content FROM firmware_files WHERE id = ? AND sha256 = ? AND content IS NOT NULL",
                       (firmware_id, sha256)).fetchone()
    return (row[0], bytes(row[1])) if row else None


class Certificates(Table, committed=dict(
        authority=_authority, set_authority=_set_authority,
        record_issued=_record_issued, delivered=_delivered, issued=_issued, issued_one=_issued_one, revoke=_revoke,
        is_revoked=_is_revoked, expiring_count=_expiring_count,
        installed_add=_installed_add, installed=_installed, installed_one=_installed_one,
        installed_removed=_installed_removed, reported=_reported, reports=_reports,
        firmware_add=_firmware_add, firmware=_firmware, firmware_list=_firmware_list,
        firmware_content=_firmware_content)):
    pass
