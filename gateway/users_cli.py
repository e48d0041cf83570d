"""`gateway user add|list|remove`: accounts of the HTTP API, written straight to the database."""

from __future__ import annotations

import argparse
import getpass
import sys

import trio

from . import clock
from .config import Config
from .http.accounts import ROLES, hash_password
from .store.scope import PLATFORM
from .store.store import open_store


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    user = sub.add_parser("user", help="manage HTTP API accounts")
    actions = user.add_subparsers(dest="user_command", required=True)
    add = actions.add_parser("add", help="create an account, or change its password and role", parents=[common])
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, default="viewer", help="admin, operator or viewer (default: viewer)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    actions.add_parser("list", help="list accounts", parents=[common])
    remove = actions.add_parser("remove", help="delete an account and its API tokens", parents=[common])
    remove.add_argument("name")
    for action in (add, remove):
        action.add_argument("--tenant", metavar="CODE", default=None,
                            help="the account's tenant (default: the platform); it logs in as NAME@CODE")


def run(args: argparse.Namespace, config: Config) -> int:
    if args.user_command == "add":
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass(f"password for {args.name}: ")
            if getpass.getpass("again: ") != password:
                print("gateway user: the passwords differ", file=sys.stderr)
                return 2
        if len(password) < 8:
            print("gateway user: the password needs at least 8 characters", file=sys.stderr)
            return 2
    return trio.run(_run, args, config, password if args.user_command == "add" else "")


async def _run(args: argparse.Namespace, config: Config, password: str) -> int:
    async with open_store(config.db) as store:
        tenant_id, label = PLATFORM, getattr(args, "name", "")
        if getattr(args, "tenant", None):
            tenant = await store.tenants.by_code(args.tenant)
            if tenant is None:
                print(f"gateway user: no tenant with the code {args.tenant}", file=sys.stderr)
                return 1
            tenant_id, label = tenant["id"], f"{args.name}@{tenant['code']}"
        if args.user_command == "add":
            refusal = await store.users.put(args.name, await hash_password(password), args.role, clock.iso(), tenant_id)
            if refusal is not None:
                print(f"gateway user: {refusal}", file=sys.stderr)
                return 1
            print(f"account {label} ({args.role}) saved")
        elif args.user_command == "list":
            for user in await store.users.list():
                print(f"{user['username']}\t{user['role']}\t{user['tenant_code']}\tsince {user['created_at']}")
        elif not await store.users.remove(args.name, tenant_id):
            print(f"gateway user: no account {label}", file=sys.stderr)
            return 1
        else:
            print(f"account {label} removed")
    return 0
