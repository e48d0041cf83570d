"""structlog set-up: readable on a terminal, JSON lines for machines."""

from __future__ import annotations

import logging
import sys

import structlog

from .monitoring import logbook


class _NamedPrintLoggerFactory(structlog.PrintLoggerFactory):
    """Print loggers that remember the name they were got by (structlog.get_logger("gateway.store")), which
    the kept log shows and searches by."""

    def __call__(self, *args: object) -> structlog.PrintLogger:
        logger = super().__call__(*args)
        logger.name = str(args[0]) if args else None  # type: ignore[attr-defined]
        return logger


def configure(fmt: str = "auto", level: str = "info", *, cache: bool = True) -> None:
    json_lines = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer = (structlog.processors.JSONRenderer() if json_lines
                else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info if json_lines else structlog.dev.set_exc_info,
            logbook.tee,  # the monitoring API's copy: logs/realtime and logs/search
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=_NamedPrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=cache,
    )
    # Libraries log through the standard library; keep their warnings, in the same stream.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
