"""Wiring: open the store, start the OCPP and HTTP listeners and the background jobs, stop cleanly."""

from __future__ import annotations

import gc
import signal
from datetime import time

import attrs
import structlog
import trio

from . import clock
from .billing.certs import keep_platform_certificates
from .certificates.service import CertificateService
from .billing.settings import from_config as billing_settings_from
from .billing.orders import OrderBook
from .billing.payments import PaymentService
from .billing.reconcile import run_daily
from .chargepoint.boundary import ConnectionLimits, raise_open_file_limit
from .chargepoint.commands import CommandService, keep_out_of_service
from .chargepoint.listener import serve_ocpp, tls_context
from .ykc.listener import serve_ykc
from .http.cloudcharge_api import Signatures
from .chargepoint.service import ChargerService
from .cluster.node import node_id_of, run_node
from .chargepoint.session import GOING_AWAY
from .config import Config, parse_address
from .http.app import create_app, serve_http
from .http.services import Billing, Limits, Services
from .http.accounts import Auth
from .monitoring.monitor import Listener, Monitor
from .store import audit
from .store.backup import run_scheduled as run_scheduled_backups
from .ops.notify import Notifier
from .store.retention import Policy, Rule, Thinning
from .store.store import Store, open_store
from .chargertest.tools import Tools as ChargerTestTools
from .chargertest.runner import ChargerTests
from .store.pg.connection import redact

YOUNG_GENERATION_THRESHOLD = 50_000
log = structlog.get_logger("gateway")


@attrs.frozen
class Running:
    """What a started gateway tells its starter (tests use the ephemeral ports)."""

    ocpp_port: int
    http_port: int
    chargers: ChargerService
    auth: Auth
    tls_port: int | None = None
    ykc_port: int | None = None
    monitor: Monitor | None = None
    charger_test_tools: ChargerTestTools | None = None  # prompts and the file server of charger test runs
    charger_tests: ChargerTests | None = None  # the charger test runs


async def run_gateway(config: Config, shutdown: trio.Event | None = None, *, handle_signals: bool = False,
                      task_status: trio.TaskStatus[Running] = trio.TASK_STATUS_IGNORED) -> None:
    """Run until `shutdown` is set (or SIGINT/SIGTERM with handle_signals)."""
    shutdown = trio.Event() if shutdown is None else shutdown
    billing_settings = billing_settings_from(config.billing)  # a bad tariff or key file stops us here
    ocpp_host, ocpp_port = parse_address(config.ocpp)
    http_host, http_port = parse_address(config.http)
    soft, hard = raise_open_file_limit()
    limits = ConnectionLimits.from_config(soft, config.max_connections, config.max_connections_per_address,
                                          config.trusted_proxies)
    log.info("open-file limit", soft=soft, hard=hard, max_connections=limits.total,
             max_connections_per_address=limits.per_address)
    async with open_store(config.db, flush_interval=config.frames.flush_interval,
                          flush_size=config.frames.flush_size,
                          retention_days=0,  # the frame log's retention is a rule of store.retention (below)
                          check_max_mb=config.db_check_max_mb,
                          unwritten_folder=config.cluster.unwritten_folder) as store:
        cluster_url = config.cluster.url(config.db)  # one node of several: gateway/cluster/
        if not cluster_url:  # (in a cluster, each node clears what it held when it joins: node.py)
            # Nothing is connected before we start: clear what a crash may have left marked online.
            await store.chargers.all_offline("gateway restarted", clock.iso())
        if config.ocpp_tls:  # the wss:// listener (started below) serves profile 3 if it checks client certificates
            tls_profiles: tuple[int, ...] = (2, 3) if config.tls_client_ca else (2,)
        else:  # a proxy in front may terminate TLS for profile 2 (it says so per request)
            tls_profiles = (2,) if config.trusted_proxies else ()
        chargers = ChargerService(store, config.charger, tls_profiles=tls_profiles,
                                  trusted_proxies=config.trusted_proxies)
        chargers.metrics.watch_storage(store.health)
        chargers.metrics.watch_connections(limits)
        chargers.metrics.watch_retention(store.retention)
        chargers.metrics.watch_live(chargers.events)
        chargers.validator.preload()  # every schema read now, while file descriptors are plenty
        _keep(store, config)
        auth = Auth(store, config.auth)
        await auth.start(config.admin_password)
        billing = None
        if config.billing.enabled:
            orders = OrderBook(store, billing_settings, chargers.events)
            billing = (orders, PaymentService(store, billing_settings, orders))
        http_stopped = trio.Event()
        monitor = Monitor(config, chargers, billing_settings)  # alerts, figures, the kept log
        async with trio.open_nursery() as nursery:
            commands = CommandService(chargers, nursery)
            certificates = CertificateService(store, config.certificates, commands)
            app = create_app(Services(chargers, commands, auth,
                                      None if billing is None else Billing(*billing), Limits.from_config(config),
                                      monitor=monitor, zone=billing_settings.tz, console=config.console),
                             config.trusted_proxies, (*config.http_allowed_hosts, http_host))
            app.config["BODY_TIMEOUT"] = config.http_body_timeout  # a body sent slower: 408
            app.config["CLOUDCHARGE"] = Signatures(config.cloudcharge_key.encode(), config.cloudcharge_window)
            app.certificates = certificates  # type: ignore[attr-defined]  # gateway/http/certificate_api.py
            # Charger test runs: the prompts waiting for a person, the file server (listening once a run needs it)
            charger_test_tools = ChargerTestTools.start(config.charger_test_files, config.db, chargers.events,
                                                         nursery)
            app.charger_test_tools = charger_test_tools  # type: ignore[attr-defined]  # charger_test_reports_api.py
            # Charger test runs, each under its charger's supervision (gateway/chargertest/runner.py)
            charger_tests = ChargerTests(commands, charger_test_tools.prompts, charger_test_tools.files,
                                         node_id=node_id_of(config.cluster, config.ocpp) if cluster_url else None)
            app.charger_tests = charger_tests  # type: ignore[attr-defined]  # gateway/http/charger_test_api.py
            await nursery.start(charger_tests.run)
            if handle_signals:
                nursery.start_soon(_wait_for_signal, shutdown)
            nursery.start_soon(chargers.watchdog)
            await nursery.start(monitor.run)  # listening for transactions before chargers connect
            notifier = Notifier()  # systemd's, when it started us (deploy/gateway.service)
            nursery.start_soon(notifier.keep_alive)
            nursery.start_soon(store.retention.run)
            if config.backup.every_hours > 0:
                nursery.start_soon(run_scheduled_backups, config.db, config.backup)
            if cluster_url:  # claiming every connection, before chargers connect
                await nursery.start(run_node, cluster_url, config.cluster, config.ocpp, chargers, commands, auth)
            await nursery.start(keep_out_of_service, commands)  # listening before chargers connect
            await nursery.start(certificates.run)  # issues the certificates of accepted CSRs
            if billing is not None:
                await nursery.start(billing[0].run)  # listening for transactions before chargers connect
                if billing_settings.wechat is not None and billing_settings.wechat.fetch_certificates:
                    await nursery.start(keep_platform_certificates, billing[1])  # before callbacks are verified
                await billing[1].process_pending()  # callbacks stored before a stop, never processed
                nursery.start_soon(billing[1].run_closer)  # trades to close at the providers, retried
                if config.billing.reconcile_at:  # daily, and the days missed while stopped at once
                    nursery.start_soon(run_daily, billing[1], time.fromisoformat(config.billing.reconcile_at),
                                       config.billing.reconcile_channels)
            bound_ocpp = await nursery.start(serve_ocpp, chargers, ocpp_host, ocpp_port, None, limits)
            bound_tls = None
            if config.ocpp_tls:
                tls_host, tls_port = parse_address(config.ocpp_tls)
                context = tls_context(config.tls_cert, config.tls_key, config.tls_client_ca)
                certificates.tls_context = context  # profile 3 trusts the certificate authority's root too
                await certificates.trust_root()
                bound_tls = await nursery.start(serve_ocpp, chargers, tls_host, tls_port, context, limits)
            bound_ykc = None
            if config.ykc:
                ykc_host, ykc_port = parse_address(config.ykc)
                bound_ykc = await nursery.start(
                    serve_ykc, chargers, ykc_host, ykc_port, billing_settings.tz,
                    lambda cp_id: billing_settings.tariff(billing_settings.tariff_name(cp_id)),
                    config.ykc_idle_timeout, limits)
            async with trio.open_nursery() as http:
                bound_http = await http.start(serve_http, app, http_host, http_port,
                                              config.charger.max_frame_bytes, http_stopped, limits)
                monitor.listeners = [Listener("ocpp", ocpp_host, bound_ocpp), Listener("http", http_host, bound_http)]
                if bound_tls is not None:
                    monitor.listeners.append(Listener("ocpp_tls", tls_host, bound_tls))
                log.info("gateway started", ocpp=f"{ocpp_host}:{bound_ocpp}", http=f"{http_host}:{bound_http}",
                         db=redact(config.db), validation=config.charger.validation)
                # What start-up made (modules, compiled schemas, the app) lives as long as the process:
                # out of the collector's way, so its full passes stay short under load.
                gc.collect()
                gc.freeze()
                # Every frame makes a few dozen short-lived containers; at the default threshold (700)
                # the young generation was collected some 70 times a second, 6 % of the event loop's
                # time (docs/benchmarks.md). Reference counting frees them anyway; cycles wait longer.
                gc.set_threshold(YOUNG_GENERATION_THRESHOLD)
                task_status.started(Running(bound_ocpp, bound_http, chargers, auth, bound_tls, bound_ykc, monitor,
                                            charger_test_tools, charger_tests))
                notifier.ready(f"serving chargers on {ocpp_host}:{bound_ocpp}, HTTP on {http_host}:{bound_http}")
                await shutdown.wait()
                notifier.stopping()
                log.info("shutting down", chargers=len(chargers.registry))
                await chargers.registry.close_all(GOING_AWAY, "server shutting down")
                http_stopped.set()  # Hypercorn finishes its graceful shutdown, then returns
            nursery.cancel_scope.cancel()
    log.info("stopped")


def _keep(store: Store, config: Config) -> None:
    """What grows is kept as long as the configuration says (gateway/store/retention.py)."""
    kept = config.retention
    store.retention.rules.add(Rule("frames", "at", config.frames.retention_days))
    store.retention.rules.add(Rule("commands", "sent_at", kept.commands_days))
    store.retention.rules.add(audit.rule(config.audit.retention_days))
    store.retention.policy = Policy(every=kept.every_minutes * 60, vacuum=kept.vacuum,
                                    thinning=Thinning(kept.meter_values_full_days, kept.meter_values_every_minutes))


async def _wait_for_signal(shutdown: trio.Event) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("signal received", signal=signal.Signals(signum).name)
            shutdown.set()
            return
