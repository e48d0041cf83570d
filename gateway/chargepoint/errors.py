"""What an outbound CALL can end in, besides a CALLRESULT."""

from __future__ import annotations


class CommandError(Exception):
    """Base of the typed failures of `Session.call`."""

    request_id: str | None = None  # the CALL's unique id, once the command service knows it


class NotConnected(CommandError):
    def __init__(self, cp_id: str):
        super().__init__(f"charge point {cp_id!r} is not connected")
        self.cp_id = cp_id


class CallErrorReceived(CommandError):
    """The charger answered with a CALLERROR."""

    def __init__(self, action: str, code: str, description: str, details: dict):
        super().__init__(f"{action}: charger answered {code}: {description}")
        self.action = action
        self.code = code
        self.description = description
        self.details = details


class CallTimeout(CommandError):
    def __init__(self, action: str, timeout: float, sent: bool):
        where = "no answer" if sent else "still queued behind another command"
        super().__init__(f"{action}: {where} after {timeout:g} s")
        self.action = action
        self.timeout = timeout
        self.sent = sent


class TooManyCommands(CommandError):
    def __init__(self, cp_id: str, limit: int):
        super().__init__(f"{limit} commands are already waiting for charge point {cp_id!r}: try again later")
        self.cp_id = cp_id
        self.limit = limit


class ChargerUnavailable(CommandError):
    """The operator keeps the charger out of service: no remote start is sent to it."""

    def __init__(self, cp_id: str, why: str):
        super().__init__(f"charge point {cp_id!r} is out of service ({why}): remote starts are refused until "
                         "the operator puts it back in service")
        self.cp_id = cp_id
        self.why = why


class NotSupported(CommandError):
    """The charger's protocol has no way to carry the command (an OCPP-only action sent to a YKC pile)."""

    def __init__(self, cp_id: str, action: str, why: str):
        super().__init__(why)
        self.cp_id = cp_id
        self.action = action


class ChargerUnderTest(CommandError):
    """A charger test runs on the charger: operators' commands would upset it (HTTP 409)."""

    def __init__(self, cp_id: str, why: str):
        super().__init__(f"charge point {cp_id!r} is under test ({why}): commands are refused until the run ends "
                         "or is stopped (POST /api/charger-tests/{runId}/stop)")
        self.cp_id = cp_id
        self.why = why
