"""/api/auth: login, who am I, API tokens; in the EVCS envelope {code, message, data, timestamp, path}."""

from __future__ import annotations

from typing import Any

from quart import g, request

from .. import clock
from ..store import scope
from ..store.users import Users
from . import params
from .accounts import Auth, Principal, token_hash
from .errors import ApiError, evcs
from .routes import PUBLIC, VIEWER, Routes
from .schemas import enveloped, list_of, op, optional, record
from .services import services

routes = Routes("auth_api", __name__, "/api/auth")
USER = record("id:int username:str role:str tenantId:int tenantCode:str tenantName:str identifier:str",
              "identifier: what the account logs in with (name@tenantcode; a platform account's bare name too)")
TOKEN = record("id:int username:str name:str prefix:str createdAt:time lastUsedAt:time? revokedAt:time?")


def _auth() -> Auth:
    return services().auth


def _users() -> Users:
    return services().chargers.store.users


def _user_info(user: dict[str, Any]) -> dict[str, Any]:
    return {"id": user["id"], "username": user["username"], "role": user["role"], "tenantId": user["tenant_id"],
            "tenantCode": user["tenant_code"], "tenantName": user["tenant_name"],
            "identifier": f"{user['username']}@{user['tenant_code']}"}


@routes.route("/login", role=PUBLIC, post=op(
    "auth", "Log in: a signed token (JWT) for Authorization: Bearer", enveloped(
        record("token:str expireTime:time", userInfo=USER)),
    errors=("400", "401", "403", "421", "429"), public=True,
    body={"type": "object", "properties": {"username": {"type": "string"}, "identifier": {"type": "string"},
                                           "password": {"type": "string"}}, "required": ["password"]},
    description="username or identifier: name@tenantcode for an account of a tenant; a bare name is an account "
                "of the platform. 401 also when the account's tenant (or one above it) is disabled or has expired."))
async def login() -> Any:
    auth = _auth()
    client = g.peer.address or "?"
    auth.refuse_if_throttled(client)
    body = await params.json_body()
    name = body.get("identifier", body.get("username")) if isinstance(body, dict) else None
    if not isinstance(name, str) or not isinstance(body.get("password"), str):
        raise params.bad("the body must be {\"username\": \"name or name@tenantcode\", \"password\": \"...\"} "
                         "(or identifier in place of username)")
    user = await auth.password_login(client, name, body["password"])
    if user is None:
        raise ApiError(401, "unauthorized", "wrong user name or password")
    auth.admit(user, "bearer")  # 401 while its tenant is disabled or expired
    token, expires = auth.issue(user)
    return evcs({"token": token, "expireTime": expires, "userInfo": _user_info(user)}, "login successful")


@routes.route("/logout", role=VIEWER, post=op(
    "auth", "Log out: a login token ends, with every other login token of the account; an API token "
            "is revoked (HTTP Basic has nothing to end: 400)",
    enveloped(record("username:str loggedOut:bool")), errors=("400",)))
async def logout() -> Any:
    """End the credentials this request used: a login token ends with every other login token of the
    account (they share its session stamp); an API token is revoked."""
    me = _me()
    if me.via == "bearer":
        await _users().end_sessions(me.username, me.tenant_id)
        return evcs({"username": me.username, "loggedOut": True}, "logged out: every login token of "
                    f"{me.username} has ended")
    if me.via == "token":
        token = request.headers.get("Authorization", "").partition(" ")[2].strip()
        await _users().revoke_hash(token_hash(token), clock.iso())
        return evcs({"username": me.username, "loggedOut": True}, "logged out: this API token is revoked")
    raise params.bad("nothing to log out: this request used no token (HTTP Basic is sent anew with every "
                     "request, and this machine needs none in protected mode or with trust_loopback)")


def _me() -> Principal:
    return g.principal


async def _account() -> dict[str, Any]:
    user = await _users().get(_me().username, _me().tenant_id)
    if user is None:
        raise params.bad("this needs an account: with no credentials configured the API has none "
                         "(set GATEWAY_ADMIN_PASSWORD or run gateway user add)")
    return user


TENANT_FIELDS = ("tenantId", "tenantCode", "tenantName", "identifier", "actingTenantId", "actingTenantCode",
                 "actingTenantName")


@routes.route("/userinfo", role=VIEWER, get=op(
    "auth", "Who the credentials belong to, and the tenant they act as", enveloped(optional(record(
        "username:str role:str authenticatedBy:str tenantId:int tenantCode:str tenantName:str identifier:str "
        "actingTenantId:int actingTenantCode:str actingTenantName:str",
        "The tenant fields appear once the gateway has tenants besides the platform (a single-site install "
        "answers as before). actingTenant*: the tenant the request acts as (the account's, or one below it "
        "named by X-Tenant-Id)"), *TENANT_FIELDS))))
async def userinfo() -> Any:
    me = _me()
    info = {"username": me.username, "role": me.role, "authenticatedBy": me.via}
    tenants = services().chargers.store.tenants
    if len(await tenants.subtree(scope.PLATFORM)) == 1:  # the platform alone: nothing to say
        return evcs(info)
    with scope.acting_as(scope.EVERYTHING):  # the account's own tenant, also when acting as one below it
        own = await tenants.get(me.tenant_id)
        acting = await tenants.get(g.scope.tenant_id)
    return evcs({**info, "tenantId": me.tenant_id, "tenantCode": me.tenant_code,
                 "tenantName": own["name"] if own else me.tenant_code, "identifier": f"{me.username}@{me.tenant_code}",
                 "actingTenantId": g.scope.tenant_id, "actingTenantCode": acting["code"] if acting else "",
                 "actingTenantName": acting["name"] if acting else ""})


@routes.route("/tokens", role=VIEWER, post=op(
    "auth", "Create an API token for scripts; it is shown once", enveloped(
        record("id:int name:str token:str prefix:str note:str")), errors=("400",), status="201",
    body=record("name:str")))
async def create_token() -> Any:
    user = await _account()
    body = await params.json_body() or {}
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not 0 < len(name) <= 100:
        raise params.bad("the body must be {\"name\": \"what the token is for\"} (1 to 100 characters)")
    token = Auth.new_api_token()
    token_id = await _users().add_token(
        user["id"], name, token_hash(token), token[:10], clock.iso())
    return evcs({"id": token_id, "name": name, "token": token, "prefix": token[:10],
                 "note": "the token is shown this once; it is stored hashed"}, "token created", 201)


@routes.route("/tokens", role=VIEWER, get=op(
    "auth", "API tokens (an admin sees everyone's)", enveloped(list_of(TOKEN)), errors=("400",)))
async def tokens() -> Any:
    user = await _account()
    rows = await _users().tokens(None if user["role"] == "admin" else user["id"])
    return evcs([params.camel(r) for r in rows])


@routes.route("/tokens/<int(max=9223372036854775807):token_id>", role=VIEWER, delete=op(
    "auth", "Revoke an API token", enveloped(record("id:int revoked:bool")), errors=("400", "404")))
async def revoke_token(token_id: int) -> Any:
    user = await _account()
    done = await _users().revoke(
        token_id, None if user["role"] == "admin" else user["id"], clock.iso())
    if not done:
        raise ApiError(404, "not_found", f"no active token {token_id} of yours")
    return evcs({"id": token_id, "revoked": True}, "token revoked")
