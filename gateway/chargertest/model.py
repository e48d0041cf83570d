"""Test cases as data: what a case file says, what the vendor declares before a run, and the rules that fill
and compare payloads (pure: no sockets, no clock but what the caller passes).

A case is one TOML file (cases/<profile folder>/<ID>.toml) read by `load_case`; an error names the file,
the step and the field. Its steps are one of the kinds below, told apart by their `kind` field.
"""

from __future__ import annotations

import enum
import functools
import re
import tomllib
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Union

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override
from cattrs.v import format_exception

from .. import clock
from .material import MATERIAL, security_material

CATALOGUE_VERSION = "gateway-cs-1.6-2026.1"  # bumped when cases change meaning
NOT_CERTIFICATION = ("This is not an OCA certification: it is the gateway's own reading of the OCPP 1.6 "
                     "charge-point test cases, run against one charger on one bench.")

# The feature profile of a case and the folder its file lives in.
PROFILES = {"Core": "core", "LocalAuthListManagement": "local_auth_list", "FirmwareManagement": "firmware",
            "Reservation": "reservation", "RemoteTrigger": "remote_trigger", "SmartCharging": "smart_charging",
            "Security": "security"}
AUTOMATION = ("AUTO", "EV", "ID", "PWR", "UPS", "FAULT", "NET")
MANUAL_ACTIONS = ("plug_in", "plug_out", "ev_side_unplug", "ev_suspend", "ev_resume", "present_id", "set_fault",
                  "clear_fault", "lock_failure", "power_cycle", "network_down", "network_up", "prompt")


class Verdict(str, enum.Enum):
    """A case's verdict: PASS, FAIL (the charger broke a rule), INCONC (it could not be decided: the charger
    vanished, a person could not act, the baseline was not reached), ERROR (the gateway's own fault),
    NOT_APPLICABLE (the declarations rule it out), SKIPPED (not run: no back-end for a manual step, stopped)."""

    PASS = "PASS"
    FAIL = "FAIL"
    INCONC = "INCONC"
    ERROR = "ERROR"
    NOT_APPLICABLE = "NOT_APPLICABLE"
    SKIPPED = "SKIPPED"


class StepVerdict(str, enum.Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    WARN = "WARN"  # passed, with a deviation the protocol allows
    INCONC = "INCONC"
    SKIPPED = "SKIPPED"


class CaseError(ValueError):
    """A case file that cannot be run: the message names the file, the step and the field."""


# A duration in seconds: a number, or a text that is one placeholder of the test data ("{heartbeat_interval}").
Seconds = Union[float, str]


def seconds(value: Seconds, values: dict[str, Any]) -> float:
    """A duration filled from the test data; TemplateError or ValueError when it is no number."""
    filled = fill(value, values)
    if isinstance(filled, bool) or not isinstance(filled, (int, float)):
        raise ValueError(f"{value!r} is not a number of seconds")
    return float(filled)


# ---- steps ---------------------------------------------------------------------------------------

@attrs.frozen
class After:
    """When a call must arrive, counted from the step named `step` (its answer, or its last call)."""

    step: str
    at_least: Seconds | None = None
    at_most: Seconds | None = None


@attrs.frozen(kw_only=True)
class Send:
    """Send a CALL; the answer must match `expect`."""

    action: str
    payload: dict[str, Any] = attrs.Factory(dict)
    expect: dict[str, Any] = attrs.Factory(dict)
    callerror: tuple[str, ...] = ()  # CALLERROR codes that refuse as well as the expected answer does
    warn: dict[str, Any] | None = None  # an answer matching this passes with a warning (allowed, not advised)
    timeout: Seconds = 30.0
    name: str | None = None
    note: str = ""
    kind = "send"


@attrs.frozen(kw_only=True)
class Expect:
    """Wait for `times` calls of `action` matching `match`, answered with `answer` (else the default)."""

    action: str
    match: dict[str, Any] = attrs.Factory(dict)
    within: Seconds | None = None  # None: the run's message time-out (more for repeated calls)
    answer: dict[str, Any] | None = None
    times: int = 1
    spacing: Seconds | None = None
    tolerance: Seconds | None = None  # None: the run's timing tolerance
    after: After | None = None
    name: str | None = None
    note: str = ""
    kind = "expect"


@attrs.frozen(kw_only=True)
class Unordered:
    """The calls listed, in any order (StatusNotification Charging and StartTransaction, ...)."""

    steps: tuple[Expect, ...]
    name: str | None = None
    note: str = ""
    kind = "unordered"


@attrs.frozen(kw_only=True)
class Absent:
    """No call of `action` (or of any of a list of actions) matching `match` for `for_` seconds."""

    action: Union[str, list[str]]
    for_: Seconds
    match: dict[str, Any] = attrs.Factory(dict)
    name: str | None = None
    note: str = ""
    kind = "absent"


@attrs.frozen(kw_only=True)
class Answer:
    """From now on (until the step named `until` starts, else the end of the case) answer the charger's
    calls of `action` with `payload`; "end" is the end of the case too)."""

    action: str
    payload: dict[str, Any]
    until: str | None = None
    name: str | None = None
    note: str = ""
    kind = "answer"


@attrs.frozen(kw_only=True)
class Configure:
    """ChangeConfiguration, put back by the baseline after the case."""

    key: str
    value: Any
    expect: Union[str, list[str]] = "Accepted"
    name: str | None = None
    note: str = ""
    kind = "configure"


@attrs.frozen(kw_only=True)
class Manual:
    """A physical action, done through the run's manual back-ends."""

    action: str
    args: dict[str, Any] = attrs.Factory(dict)
    expect_text: str = ""
    timeout: float = 300.0
    name: str | None = None
    note: str = ""
    kind = "manual"


@attrs.frozen(kw_only=True)
class Disconnect:
    """The gateway closes the charger's socket and (with `refuse`) refuses it for `for_` seconds."""

    for_: Seconds
    refuse: bool = True
    name: str | None = None
    note: str = ""
    kind = "disconnect"


@attrs.frozen(kw_only=True)
class ResetReboot:
    """Reset, then wait for the charger's new BootNotification (an approximate power cycle)."""

    type: str = "Hard"
    name: str | None = None
    note: str = ""
    kind = "reset_reboot"


@attrs.frozen(kw_only=True)
class Connection:
    """Wait for the charger to connect again and check how: securityProfile (as the gateway admitted it),
    basicAuth ("valid" when it passed HTTP Basic, else "none"), clientCertificate ("valid" when it presented
    one the gateway trusts, else "none"), tls (bool)."""

    match: dict[str, Any] = attrs.Factory(dict)
    within: Seconds | None = None
    name: str | None = None
    note: str = ""
    kind = "connection"


@attrs.frozen(kw_only=True)
class Wait:
    seconds: Seconds
    name: str | None = None
    note: str = ""
    kind = "wait"


@attrs.frozen(kw_only=True)
class Store:
    """Keep a value of an earlier step (its payload or its answer) as `as_`, for later templates."""

    from_: str
    path: str
    as_: str
    name: str | None = None
    note: str = ""
    kind = "store"


END = "end"  # `until` the end of the case

Step = Union[Send, Expect, Unordered, Absent, Answer, Configure, Manual, Disconnect, ResetReboot, Connection, Wait,
             Store]
STEP_KINDS: dict[str, type] = {cls.kind: cls for cls in (Send, Expect, Unordered, Absent, Answer, Configure,
                                                         Manual, Disconnect, ResetReboot, Connection, Wait, Store)}


def describe(step: Step) -> str:
    """One line saying what a step does, for reports and the live view."""
    if step.note:
        return step.note
    match step:
        case Send(action=action):
            return f"send {action}"
        case Expect(action=action, times=times, match=m):
            what = f" {_short(m)}" if m else ""
            return f"expect {action}{what}" + (f" x{times}" if times > 1 else "")
        case Unordered(steps=steps):
            return "expect in any order: " + ", ".join(describe(s).removeprefix("expect ") for s in steps)
        case Absent(action=action, for_=seconds):
            return f"no {action if isinstance(action, str) else ' or '.join(action)} for {_s(seconds)} s"
        case Answer(action=action, payload=payload):
            return f"answer {action} with {_short(payload)}"
        case Configure(key=key, value=value):
            return f"set {key} to {value}"
        case Manual(action=action, expect_text=text):
            return f"manual: {action}" + (f" ({text})" if text else "")
        case Disconnect(for_=seconds, refuse=refuse):
            return f"cut the connection for {_s(seconds)} s" + (" and refuse it" if refuse else "")
        case ResetReboot(type=kind):
            return f"{kind} Reset and wait for the reboot"
        case Connection(match=m):
            return "the charger connects again" + (f" ({_short(m)})" if m else "")
        case Wait(seconds=seconds):
            return f"wait {_s(seconds)} s"
        case Store(from_=source, path=path, as_=name):
            return f"keep {source}.{path} as {name}"
    return step.kind


def _s(value: Seconds) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _short(value: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in value.items())


# ---- the case --------------------------------------------------------------------------------------

@attrs.frozen(kw_only=True)
class Case:
    id: str
    title: str
    profile: str
    automation: tuple[str, ...] = ("AUTO",)
    requires: tuple[str, ...] = ()
    timeout: float = 120.0
    approximate: bool = False
    purpose: str = ""
    steps: tuple[Step, ...]

    @property
    def folder(self) -> str:
        return PROFILES[self.profile]

    @property
    def unattended(self) -> bool:
        return set(self.automation) <= {"AUTO", "NET"}

    def is_approximate(self) -> bool:
        """Approximate when it says so or when a Reset stands in for a power cycle."""
        return self.approximate or any(isinstance(s, ResetReboot) for s in self.steps)


def _converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)
    conv.register_structure_hook(Union[str, list[str]], lambda v, _: _str_or_list(v))
    conv.register_structure_hook(Any, lambda v, _: v)
    conv.register_structure_hook(str, lambda v, _: _text(v))
    conv.register_structure_hook(Seconds, lambda v, _: _seconds(v))
    conv.register_structure_hook(Union[float, str, None], lambda v, _: None if v is None else _seconds(v))
    renamed = {"for_": "for", "from_": "from", "as_": "as"}
    for cls in STEP_KINDS.values():
        fields = {f.name: override(rename=renamed[f.name]) for f in attrs.fields(cls) if f.name in renamed}
        conv.register_structure_hook(cls, make_dict_structure_fn(cls, conv, _cattrs_forbid_extra_keys=True,
                                                                 **fields))

    plain_expect = conv.get_structure_hook(Expect)
    conv.register_structure_hook(Expect, lambda data, _: plain_expect(
        {k: v for k, v in data.items() if not (k == "kind" and v == "expect")} if isinstance(data, dict) else data,
        Expect))

    def step(data: Any, _: type) -> Step:
        if not isinstance(data, dict):
            raise ValueError(f"a step is a table, not {type(data).__name__}")
        kind = data.get("kind")
        if kind not in STEP_KINDS:
            raise ValueError(f"kind {kind!r} is not a step kind: one of {', '.join(STEP_KINDS)}")
        return conv.structure({k: v for k, v in data.items() if k != "kind"}, STEP_KINDS[kind])

    conv.register_structure_hook(Step, step)  # type: ignore[arg-type]
    return conv


def _seconds(value: Any) -> float | str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            raise _Refused(f"{value} seconds: a duration cannot be negative")
        return float(value)
    if isinstance(value, str) and _PLACEHOLDER.fullmatch(value):
        return value
    raise _Refused(f"expected a number of seconds or one placeholder such as \"{{heartbeat_interval}}\", not {value!r}")


def _text(value: Any) -> str:
    """A text field takes a text only (a list or a number is a mistake in the case, not something to stringify)."""
    if isinstance(value, str):
        return value
    raise _Refused(f"expected a text, not {value!r}")


def _str_or_list(value: Any) -> str | list[str]:
    if isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        return value
    raise _Refused(f"expected a text or a list of texts, not {value!r}")


_CONVERTER = _converter()
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def parse_case(data: dict[str, Any], source: str = "<case>") -> Case:
    """A case from its TOML table; CaseError naming `source`, the step and the field."""
    steps = data.get("steps", [])
    if not isinstance(steps, list) or not steps:
        raise CaseError(f"{source}: a case needs a list of [[steps]]")
    parsed: list[Step] = []
    for index, raw in enumerate(steps):
        where = f"{source}: step {index}" + (f" ({raw.get('name')})" if isinstance(raw, dict) and raw.get("name")
                                             else "")
        try:
            parsed.append(_CONVERTER.structure(raw, Step))  # type: ignore[arg-type]
        except Exception as exc:  # cattrs' grouped errors: each names its field
            raise CaseError(f"{where}: {_explain(exc)}") from None
    try:
        case = _CONVERTER.structure({**{k: v for k, v in data.items() if k != "steps"}, "steps": []}, Case)
    except Exception as exc:
        raise CaseError(f"{source}: {_explain(exc)}") from None
    case = attrs.evolve(case, steps=tuple(parsed), automation=tuple(case.automation), requires=tuple(case.requires))
    _check(case, source)
    return case


def _explain(exc: Exception) -> str:
    if isinstance(exc, (cattrs.ClassValidationError, cattrs.IterableValidationError)):
        found = cattrs.transform_error(exc, format_exception=_format)
        return "; ".join(m.replace(" @ $.", " in field ").replace(" @ $", "") for m in found)
    return str(exc)


class _Refused(ValueError):
    """A value a hook of ours refuses: its message says why."""


def _format(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, _Refused):
        return str(exc)
    return format_exception(exc, type_)


def _check(case: Case, source: str) -> None:
    """What the types alone do not say: known profile, automation, actions, names referred to."""
    if case.profile not in PROFILES:
        raise CaseError(f"{source}: profile {case.profile!r} is not one of {', '.join(PROFILES)}")
    for code in case.automation:
        if code not in AUTOMATION:
            raise CaseError(f"{source}: automation {code!r} is not one of {', '.join(AUTOMATION)}")
    for need in case.requires:
        problem = requirement_problem(need)
        if problem:
            raise CaseError(f"{source}: requires {need!r}: {problem}")
    if case.timeout <= 0:
        raise CaseError(f"{source}: timeout must be positive")
    names: list[str] = []
    stored: set[str] = set()
    for index, step in enumerate(_flat(case.steps)):
        where = f"{source}: step {index}" + (f" ({step.name})" if step.name else "")
        if step.name:
            if step.name in names:
                raise CaseError(f"{where}: the name {step.name!r} is given to two steps")
            names.append(step.name)
        if isinstance(step, Manual) and step.action not in MANUAL_ACTIONS:
            raise CaseError(f"{where}: manual action {step.action!r} is not one of {', '.join(MANUAL_ACTIONS)}")
        if isinstance(step, ResetReboot) and step.type not in ("Hard", "Soft"):
            raise CaseError(f"{where}: type must be Hard or Soft")
        if isinstance(step, Expect) and step.times < 1:
            raise CaseError(f"{where}: times must be at least 1")
        if isinstance(step, Expect) and step.after is not None and step.after.step not in names:
            raise CaseError(f"{where}: after refers to {step.after.step!r}, which is not an earlier step")
        if isinstance(step, Store):
            if step.from_ not in names:
                raise CaseError(f"{where}: from refers to {step.from_!r}, which is not an earlier step")
            stored.add(step.as_)
        for placeholder in placeholders(attrs.asdict(step, recurse=True)):
            if placeholder not in TEMPLATE_NAMES and placeholder not in stored:
                raise CaseError(f"{where}: {{{placeholder}}} is neither test data ({', '.join(sorted(TEMPLATE_NAMES))})"
                                " nor a value kept by an earlier store step")
    for index, step in enumerate(_flat(case.steps)):
        if isinstance(step, Answer) and step.until not in (None, END) and step.until not in names:
            raise CaseError(f"{source}: step {index}: until {step.until!r}: no step has that name (or \"end\")")


def _flat(steps: Iterable[Step]) -> Iterable[Step]:
    for step in steps:
        yield step
        if isinstance(step, Unordered):
            yield from step.steps


def load_case(path: Path | Any) -> Case:
    """A case from its file (a path or an importlib resource)."""
    source = getattr(path, "name", str(path))
    source = f"{Path(str(path)).parent.name}/{source}"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise CaseError(f"{source}: not valid TOML: {exc}") from None
    case = parse_case(data, source)
    stem = Path(str(path)).stem
    if case.id != stem:
        raise CaseError(f"{source}: id {case.id!r} differs from the file name {stem!r}")
    return case


@functools.cache
def catalogue() -> tuple[Case, ...]:
    """Every case shipped with the gateway (cases/<profile folder>/*.toml), by id."""
    root = resources.files("gateway.chargertest") / "cases"
    found: list[Case] = []
    if root.is_dir():
        for folder in sorted(root.iterdir(), key=lambda p: p.name):
            if folder.is_dir() and folder.name in PROFILES.values():
                found.extend(load_case(f) for f in folder.iterdir() if f.name.endswith(".toml"))
    return tuple(sorted(found, key=lambda c: _order(c.id)))


def _order(case_id: str) -> tuple:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in case_id.split("_"))  # TC_005_1 < TC_007


# ---- plans --------------------------------------------------------------------------------------

PLANS = ("core", "all", *(folder for folder in PROFILES.values() if folder != "core"))


def plan(name: str, cases: Iterable[Case], only: Iterable[str] = ()) -> list[Case]:
    """The cases of plan `name` ("all", "core" or a profile folder), or only those named in `only`
    (ValueError for an unknown plan or case id)."""
    if name not in PLANS:
        raise ValueError(f"unknown plan {name!r}: one of {', '.join(PLANS)}")
    chosen = [c for c in cases if name == "all" or c.folder == name]
    wanted = list(only)
    if wanted:
        by_id = {c.id: c for c in chosen}
        unknown = [w for w in wanted if w not in by_id]
        if unknown:
            raise ValueError(f"not in plan {name!r}: {', '.join(unknown)}")
        chosen = [by_id[w] for w in dict.fromkeys(wanted)]
    return chosen


# ---- declarations and test data ---------------------------------------------------------------------

@attrs.frozen(kw_only=True)
class Declarations:
    """What the vendor states about the charger before a run, and the test data the cases use."""

    # what the charger supports
    connectors: int = 1
    fixed_cable: bool = False
    reservation: bool = True
    reserve_connector_zero: bool = False
    local_auth_list: bool = True
    authorization_cache: bool = True
    smart_charging: bool = True
    remote_trigger: bool = True
    firmware: bool = True
    diagnostics: bool = True
    security_profiles: tuple[int, ...] = (0,)
    signed_firmware: bool = False
    file_transfer: tuple[str, ...] = ("HTTP",)
    backup_power: bool = False
    manual_backends: tuple[str, ...] = ("console",)
    webhook_url: str | None = None
    webhook_secret: str | None = None  # signs the webhook's requests; never shown back
    # test data
    connector: int = 1
    valid_tag: str = "TESTTAG01"
    valid_tag_2: str = "TESTTAG02"
    invalid_tag: str = "BADTAG99"
    parent_tag: str = "PARENT01"
    heartbeat_interval: int = 60
    meter_interval: int = 10
    clock_aligned_interval: int = 0
    connection_timeout: int = 30
    transaction_duration: int = 10  # how long to wait to be sure no transaction starts
    reservation_minutes: float = 5  # reservation_expiry is this far from now
    offline_seconds: int = 30  # how long the offline cases keep the charger away
    security_profile: int = 0  # the profile the charger runs at when the run starts
    signed_firmware_url: str = ""  # signed firmware (the vendor's image, signature and signing certificate)
    signing_certificate: str = ""
    firmware_signature: str = ""
    firmware_url: str = ""
    bad_firmware_url: str = ""
    upload_url: str = ""
    vendor: str = "Gateway Test CPO"
    message_timeout: float = 30.0  # a call awaited with no `within` of its own
    tolerance: float = 2.0  # timing checks: seconds either way
    reconnect_allowance: float = 60.0  # how long a charger may be away mid-case before the run stops
    reboot_timeout: float = 300.0  # a Reset's new BootNotification

    def __attrs_post_init__(self) -> None:
        for name in ("connectors", "connector"):
            if getattr(self, name) < 1:
                raise _Refused(f"{name} must be at least 1")
        if self.connector > self.connectors:
            raise _Refused(f"connector {self.connector} is not one of the {self.connectors} declared")
        for backend in self.manual_backends:
            if backend not in ("console", "terminal", "webhook"):
                raise _Refused(f"manual back-end {backend!r} is not one of console, terminal, webhook")
        if "webhook" in self.manual_backends and not self.webhook_url:
            raise _Refused("the webhook back-end needs webhook_url")
        for protocol in self.file_transfer:
            if protocol not in ("HTTP", "HTTPS", "FTP"):
                raise _Refused(f"file transfer {protocol!r} is not one of HTTP, HTTPS, FTP")
        for profile in self.security_profiles:
            if profile not in (0, 1, 2, 3):
                raise _Refused(f"security profile {profile!r} is not one of 0, 1, 2, 3")
        for name in ("heartbeat_interval", "message_timeout", "reboot_timeout", "reconnect_allowance"):
            if getattr(self, name) <= 0:
                raise _Refused(f"{name} must be positive")

    def public(self) -> dict[str, Any]:
        """As the run's JSON shows them (the webhook secret left out)."""
        shown = {f.name: getattr(self, f.name) for f in attrs.fields(Declarations) if f.name != "webhook_secret"}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in shown.items()}

    def satisfies(self, need: str) -> str | None:
        """None when the declarations meet `need` (a case's requires entry), else why not."""
        negate = need.startswith("!")
        name, op, wanted = _split_need(need.lstrip("!"))
        value = getattr(self, name)
        if op is None:
            met = bool(value)
            shown = f"{name} is declared {_shown(value)}"
            ok = met != negate
            return None if ok else (f"{shown}; the case needs it {'false' if negate else 'true'}")
        if op == ":":  # any of the values listed
            options = {_coerce(w.strip(), value) for w in wanted.split(",")}
            met = bool(options & set(value)) if isinstance(value, tuple) else value in options
        elif op == "=":
            met = (_coerce(wanted, value) in value) if isinstance(value, tuple) else value == _coerce(wanted, value)
        else:
            met = value >= int(wanted)
        if met != negate:
            return None
        return f"{name} is declared {_shown(value)}; the case needs {'not ' if negate else ''}{name}{op}{wanted}"


_NEED = re.compile(r"^([a-z_0-9]+)(?:(=|>=|:)(.+))?$")


def _split_need(need: str) -> tuple[str, str | None, str]:
    m = _NEED.match(need)
    if m is None:
        raise ValueError(f"cannot read requirement {need!r}")
    return m.group(1), m.group(2), m.group(3) or ""


def _coerce(wanted: str, value: Any) -> Any:
    sample = value[0] if isinstance(value, tuple) and value else value
    if isinstance(sample, bool):
        return wanted.lower() == "true"
    if isinstance(sample, int) or (isinstance(value, tuple) and wanted.isdigit()):
        return int(wanted)
    return wanted


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


_CAPABILITIES = {f.name for f in attrs.fields(Declarations)}


def requirement_problem(need: str) -> str | None:
    """Why a case's requires entry cannot be read, or None."""
    try:
        name, op, wanted = _split_need(need.lstrip("!"))
    except ValueError as exc:
        return str(exc)
    if name not in _CAPABILITIES:
        return f"{name!r} is not a declaration"
    if op == ">=" and not wanted.isdigit():
        return f"{need}: >= needs a whole number"
    return None


def declarations(data: dict[str, Any] | None) -> Declarations:
    """Declarations from a JSON object or a TOML table; ValueError naming the field that is wrong."""
    data = dict(data or {})
    for key, value in list(data.items()):
        if isinstance(value, list):
            data[key] = tuple(value)
    try:
        return _DECLARATIONS.structure(data, Declarations)
    except Exception as exc:
        raise ValueError(f"declarations: {_explain(exc)}") from None


_DECLARATIONS = cattrs.Converter(forbid_extra_keys=True)


# ---- templates --------------------------------------------------------------------------------

def context(decl: Declarations, now: datetime | None = None) -> dict[str, Any]:
    """The values a case's `{name}` placeholders are filled from, before any store step."""
    now = now or clock.now()
    values = {name: getattr(decl, name) for name in TEMPLATE_NAMES if hasattr(decl, name)}
    values["now"] = clock.iso(now)
    values["reservation_expiry"] = clock.iso(now + timedelta(minutes=decl.reservation_minutes))
    values["one_hour_ago"] = clock.iso(now - timedelta(hours=1))
    values["reservation_seconds"] = decl.reservation_minutes * 60
    values["unknown_connector"] = decl.connectors + 1
    values["higher_security_profile"] = str(min(decl.security_profile + 1, 3))  # configuration values are text
    values["lower_security_profile"] = str(max(decl.security_profile - 1, 0))
    values.update(security_material(now, decl.firmware_signature))
    values["in_one_hour"] = clock.iso(now + timedelta(hours=1))
    return values


TEMPLATE_NAMES = frozenset({
    "connector", "connectors", "valid_tag", "valid_tag_2", "invalid_tag", "parent_tag", "heartbeat_interval",
    "meter_interval", "clock_aligned_interval", "connection_timeout", "transaction_duration", "firmware_url",
    "bad_firmware_url", "upload_url", "vendor", "now", "reservation_expiry", "one_hour_ago", "in_one_hour",
    "reservation_seconds", "unknown_connector", "offline_seconds", "signed_firmware_url", "signing_certificate",
    "firmware_signature", "higher_security_profile", "lower_security_profile", *MATERIAL})


def placeholders(value: Any) -> set[str]:
    """The placeholder names anywhere in `value`."""
    if isinstance(value, str):
        return set(_PLACEHOLDER.findall(value))
    if isinstance(value, dict):
        return set().union(*(placeholders(v) for v in value.values())) if value else set()
    if isinstance(value, (list, tuple)):
        return set().union(*(placeholders(v) for v in value)) if value else set()
    return set()


class TemplateError(KeyError):
    def __str__(self) -> str:
        return f"no value for the placeholder {{{self.args[0]}}}"


def fill(value: Any, values: dict[str, Any]) -> Any:
    """`value` with its placeholders filled from `values`; a string that is one placeholder alone takes the
    value's own type. TemplateError for a name without a value."""
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole:
            return _value(values, whole.group(1))
        return _PLACEHOLDER.sub(lambda m: str(_value(values, m.group(1))), value)
    if isinstance(value, dict):
        return {k: fill(v, values) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [fill(v, values) for v in value]
    return value


def _value(values: dict[str, Any], name: str) -> Any:
    try:
        return values[name]
    except KeyError:
        raise TemplateError(name) from None


# ---- matching -----------------------------------------------------------------------------------

ANY = "*"


def mismatches(pattern: Any, actual: Any, path: str = "") -> list[str]:
    """How `actual` differs from `pattern` (empty: it matches). A table matches a subset of the keys; a list
    means any of its values (against a list: each of its items matches some item of the list, in any order);
    "*" means present with any value; anything else must be equal (1 == 1.0)."""
    where = path or "payload"
    if isinstance(pattern, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {_json(actual)}"]
        found: list[str] = []
        for key, wanted in pattern.items():
            sub = f"{path}.{key}" if path else key
            if key not in actual:
                found.append(f"{sub}: missing (expected {_json(wanted)})")
            else:
                found.extend(mismatches(wanted, actual[key], sub))
        return found
    if pattern == ANY:
        return []
    if isinstance(pattern, list) and isinstance(actual, list):
        missing = [p for p in pattern if all(mismatches(p, item, path) for item in actual)]
        if not missing:
            return []
        return [f"{where}: no item matches {_json(p)}" for p in missing]
    if isinstance(pattern, list):
        if any(not mismatches(p, actual, path) for p in pattern):
            return []
        return [f"{where}: {_json(actual)} is none of {_json(pattern)}"]
    if _equal(pattern, actual):
        return []
    return [f"{where}: expected {_json(pattern)}, got {_json(actual)}"]


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, str):
        # A number from the test data against a text field (a configuration value is text in OCPP): the
        # text must be the number written plainly. A number where the schema wants text is the schema's
        # violation, found apart from matching.
        return b.strip() == (str(int(a)) if float(a).is_integer() else str(a))
    return type(a) is type(b) and a == b


def _json(value: Any) -> str:
    import json
    return json.dumps(value, ensure_ascii=False, default=str)


def dig(value: Any, path: str) -> Any:
    """The value at a dotted path (list items by number: idTagInfo.status, configurationKey.0.value);
    KeyError naming the part that is missing."""
    current = value
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            raise KeyError(f"{path}: no {part!r} there")
    return current


def utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc)
