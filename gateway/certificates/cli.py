"""`gateway ca init|import|import-firmware-signer|show`: the certificate authority, written straight to the
database. No command prints a private key."""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

import trio

from ..config import Config
from ..store.store import open_store
from .authority import NAME_MAX, CertificateError
from .service import FIRMWARE, ISSUING, CertificateService, certificate_view


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    ca = sub.add_parser("ca", help="the certificate authority of the chargers' certificates and signed firmware")
    actions = ca.add_subparsers(dest="ca_command", required=True)
    init = actions.add_parser("init", parents=[common],
                              help="make a root, an issuing CA and a firmware signing key")
    init.add_argument("--name", default=socket.gethostname()[:NAME_MAX], help="the organisation the certificates name "
                                                                   "(default: this host's name)")
    init.add_argument("--replace", action="store_true", help="replace the authority that exists")
    imported = actions.add_parser("import", parents=[common], help="use an existing CA: its certificate (then its "
                                                                   "issuers up to the root) and key, PEM files")
    imported.add_argument("certificate", type=Path)
    imported.add_argument("key", type=Path, nargs="?",
                          help="its private key; left out: certificates.external_command issues")
    imported.add_argument("--replace", action="store_true")
    signer = actions.add_parser("import-firmware-signer", parents=[common],
                                help="use an existing firmware signing certificate (then its issuers) and key")
    signer.add_argument("certificate", type=Path)
    signer.add_argument("key", type=Path)
    signer.add_argument("--replace", action="store_true")
    actions.add_parser("show", parents=[common], help="print the authority's certificates (PEM)")


def run(args: argparse.Namespace, config: Config) -> int:
    return trio.run(_run, args, config)


async def _run(args: argparse.Namespace, config: Config) -> int:
    async with open_store(config.db) as store:
        try:
            return await _command(args, CertificateService(store, config.certificates))
        except (CertificateError, OSError) as exc:  # caught here: the store's nursery would wrap it in a group
            print(f"gateway ca: {exc}", file=sys.stderr)
            return 2


async def _command(args: argparse.Namespace, service: CertificateService) -> int:
    if args.ca_command == "init":
        kept = await service.create(args.name, args.replace)
    elif args.ca_command == "import":
        kept = await service.import_issuing(args.certificate.read_text(),
                                            args.key.read_text() if args.key else None, args.replace)
    elif args.ca_command == "import-firmware-signer":
        kept = await service.import_firmware(args.certificate.read_text(), args.key.read_text(), args.replace)
    else:
        kept = True
    if not kept:
        print("gateway ca: it exists already; --replace replaces it", file=sys.stderr)
        return 1
    for title, chain in (("issuing CA", await service.chain(ISSUING)),
                         ("firmware signer", await service.chain(FIRMWARE))):
        if not chain:
            print(f"# {title}: none")
            continue
        view = certificate_view(chain[0])
        print(f"# {title}: {view['subject']}, serial {view['serialNumber']}, until {view['notAfter']}")
        if title == "issuing CA":
            print(f"# root (install on chargers as CentralSystemRootCertificate / ManufacturerRootCertificate, "
                  f"and trust for profile 3):\n{certificate_view(chain[-1])['pem']}", end="")
    return 0
