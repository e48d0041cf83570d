"""The pieces OpenAPI operations are made of: schema shorthands, the error answers, the query parameters
shared by many routes, op() for one operation, and the billing records the billing routes answer.
Each route's operation is declared beside its handler (routes.py); openapi.py assembles the document."""

from __future__ import annotations

from typing import Any

from ..ocpp.validation import load_schema

Schema = dict[str, Any]

# ---- schema helpers ----------------------------------------------------------------

KINDS: dict[str, Schema] = {
    "str": {"type": "string"}, "int": {"type": "integer"}, "num": {"type": "number"},
    "bool": {"type": "boolean"}, "time": {"type": "string", "format": "date-time"},
    "obj": {"type": "object"}, "list": {"type": "array"}, "any": {},
}


def kind(spec: str) -> Schema:
    """'int' -> integer; 'int?' -> integer or null; 'any' -> anything."""
    nullable = spec.endswith("?")
    schema = dict(KINDS[spec.rstrip("?")])
    if nullable and "type" in schema:
        schema["type"] = [schema["type"], "null"]
    return schema


def record(spec: str, doc: str | None = None, **more: Schema) -> Schema:
    """An object whose fields are all present: 'id:int chargePointId:str stoppedAt:time?' plus schemas."""
    props = {name: kind(of) for name, of in (pair.split(":") for pair in spec.split())}
    props.update(more)
    return {"type": "object", "properties": props, "required": list(props), **({"description": doc} if doc else {})}


def optional(schema: Schema, *names: str) -> Schema:
    """A record whose fields `names` may be left out."""
    schema["required"] = [name for name in schema["required"] if name not in names]
    return schema


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def list_of(item: Schema) -> Schema:
    return {"type": "array", "items": item}


def paged(name: str) -> Schema:
    return record("total:int page:int size:int", records=list_of(ref(name)))


def ocpp_schema(action: str, kind: str) -> Schema:
    """A 1.6 schema as an OpenAPI schema: its own definitions inlined, its dialect markers dropped."""
    raw = load_schema(action, kind)
    definitions = raw.get("definitions", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(definitions[node["$ref"].rsplit("/", 1)[1]])
            return {key: inline(value) for key, value in node.items()}
        return [inline(value) for value in node] if isinstance(node, list) else node

    return inline({k: v for k, v in raw.items() if k not in ("$schema", "$id", "id", "definitions")})



# ---- errors --------------------------------------------------------------------------

ERRORS = {
    "400": ("BadRequest", "bad_request: a parameter is missing or malformed, the body is not a JSON object, "
                          "or the payload fails the 1.6 schema (field names it)"),
    "401": ("Unauthorized", "unauthorized: no credentials or wrong ones (once an account exists)"),
    "403": ("Forbidden", "forbidden: the role is too low (ChangeConfiguration of SecurityProfile or "
                         "AuthorizationKey and the certificate actions need admin), protected mode (no account "
                         "exists yet) refuses a client that is not on this machine, or a browser says a request "
                         "that would change something comes from another site (Origin, Sec-Fetch-Site)"),
    "421": ("MisdirectedRequest", "misdirected_request: the Host header names none of the gateway's names "
                                  "(loopback names, IP addresses, the http address, http_allowed_hosts)"),
    "429": ("TooManyRequests", "too_many_requests: too many failed logins (or HTTP Basic attempts) from this "
                               "address, or too many commands waiting for the charger (Retry-After)"),
    "404": ("NotFound", "not_found: no such record"),
    "405": ("MethodNotAllowed", "method_not_allowed: the path does not take this method"),
    "406": ("NotAcceptable", "not_acceptable: the route answers an endless stream (text/event-stream), which "
                             "the request's Accept header does not name"),
    "409": ("Conflict", "conflict: the record exists already, or an order or payment change the rules do not allow"),
    "500": ("InternalError", "internal_error: the gateway could not answer (logged; no details are given)"),
    "502": ("CallError", "call_error: the charger answered CALLERROR (errorCode, errorDescription, errorDetails)"),
    "504": ("Timeout", "timeout: the charger did not answer within timeoutSeconds"),
    "502p": ("ProviderError", "provider_error: the payment provider did not answer, or answered an error"),
}
NOT_CONNECTED = ("NotConnected", "not_connected: the charger is known but not connected (lastSeen says when it "
                                 "was); not_found: it has never connected")
COMMAND_ERRORS = ("400", "404c", "502", "504")  # 404c: the charger is not connected


# ---- query parameters ----------------------------------------------------------------

def param(name: str) -> Schema:
    return {"$ref": f"#/components/parameters/{name}"}


COMMAND_QUERY = [param("timeoutSeconds"), param("wait")]
PAGING = [param("page"), param("size")]

# Filled in by the gateway when left out: (action, field) -> what it does
FILLED = {("ReserveNow", "reservationId"): "left out: the gateway allocates one and answers it",
          ("UpdateFirmware", "retrieveDate"): "left out: now (GET only)"}


def payload_query(action: str) -> list[Schema]:
    """The action's payload fields as query parameters, typed by its 1.6 request schema."""
    schema = ocpp_schema(action, "request")
    out = []
    for name, prop in schema.get("properties", {}).items():
        spec: Schema = {"name": name, "in": "query", "required": name in schema.get("required", ())}
        if (action, name) in FILLED:
            spec.update(required=False, description=FILLED[action, name])
        if prop.get("type") == "object" or prop.get("items", {}).get("type") == "object":
            spec["content"] = {"application/json": {"schema": prop}}  # given as JSON
        else:
            spec["schema"] = prop
            if prop.get("type") == "array":
                spec["description"] = "comma-separated, repeated, or a JSON array"
        out.append(spec)
    return out


def command_answer(spec: str, optional: tuple[str, ...] = (), **more: Schema) -> Schema:
    """A command's answer; with wait=false the route answers CommandStarted instead."""
    answer = record(spec, **more)
    answer["required"] = [name for name in answer["required"] if name not in optional]
    return {"anyOf": [answer, ref("CommandStarted")]}


# ---- operations -------------------------------------------------------------------------

def op(tag: str, summary: str, ok: Schema | None, *, errors: tuple[str, ...] = (), query: list | None = None,
       body: Schema | None = None, body_required: bool = True, status: str = "200",
       description: str | None = None, media: str = "application/json", public: bool = False) -> Schema:
    """One operation; `ok` is the success schema (None: no body), `errors` the status codes it can answer.
    Every operation needs credentials (or a loopback client) unless `public`."""
    operation: Schema = {"tags": [tag], "summary": summary}
    if public:
        operation["security"] = []
    else:
        errors = (*errors, "401", "403", "421", "429")  # 429: failed HTTP Basic attempts count as failed logins
    if description:
        operation["description"] = description
    if query:
        operation["parameters"] = query
    if body is not None:
        operation["requestBody"] = {"required": body_required, "content": {"application/json": {"schema": body}}}
    responses = {status: {"description": "OK", "content": {media: {"schema": ok}}} if ok is not None
                 else {"description": "Done, no body"}}
    for code in sorted(set(errors) | {"405", "500"}):
        name = NOT_CONNECTED[0] if code == "404c" else ERRORS[code][0]
        responses[code[:3]] = {"$ref": f"#/components/responses/{name}"}
    operation["responses"] = responses
    return operation


def also(operation: Schema, status: str, description: str, schema: Schema) -> Schema:
    """An operation that answers one more success status."""
    operation["responses"][status] = {"description": description, "content": {"application/json": {"schema": schema}}}
    operation["responses"] = dict(sorted(operation["responses"].items()))
    return operation


def query(name: str, description: str, schema: Schema, required: bool | None = None) -> Schema:
    """A query parameter of one route (`required` given: stated, as the billing routes state it)."""
    return {"name": name, "in": "query", "description": description, "schema": schema,
            **({} if required is None else {"required": required})}


def enveloped(data: Schema) -> Schema:
    return record("code:int message:str timestamp:time path:str", data=data)


def with_csv(operation: Schema) -> Schema:
    """An operation that answers text/csv too (format=csv)."""
    operation["responses"]["200"]["content"]["text/csv"] = {"schema": {"type": "string"}}
    return operation


# ---- billing records ---------------------------------------------------------------

ORDER_STATUS = {"type": "integer", "enum": [0, 1, 2, 10, 11, 12, 13],
                "description": "0 created/charging, 1 completed (metered), 2 cancelled, 10 awaiting payment, "
                               "11 paid, 12 refunding, 13 refunded"}
ORDER = record(
    "id:int orderNo:str sessionId:str transactionId:int? remoteStartRequestId:str? chargePointId:str "
    "connectorId:int? idTag:str? statusName:str tariff:str currency:str startedAt:str? stoppedAt:str? "
    "meterStart:int? meterStop:int? energyWh:int? energyAmount:int? serviceAmount:int? totalAmount:int? "
    "pricingMethod:str? pricingNote:str? pricing:obj? paidAmount:int refundedAmount:int createdAt:time updatedAt:time "
    "tariffVersionId:int? startSource:str? stopSource:str? chargerStartedAt:str? chargerStoppedAt:str? timezone:str",
    "An order: money in minor units of currency (fen, cents). pricing: {tariff, tariffVersion, timezone, serviceFee, "
    "lines: [{start, end, price, serviceFee, energyWh, amount, occurrences}]}; pricingMethod meter_values or "
    "time_proportional (no meter values inside the session: energy split in proportion to time). startedAt and "
    "stoppedAt are the times the session is priced on; startSource and stopSource say whose clock they are "
    "(charger, gateway: the charger's time was implausible and the receive time is used, operator: corrected); "
    "chargerStartedAt and chargerStoppedAt are what the charger sent. timezone: the zone of the tariff periods.",
    status=ORDER_STATUS)
PAYMENT = record("id:int tradeNo:str orderId:int channel:str amount:int currency:str status:str "
                 "idempotencyKey:str? providerTradeNo:str? payUrl:str? note:str? createdBy:str? createdAt:time "
                 "paidAt:time? updatedAt:time expiresAt:time? closeState:str? closeAttempts:int closeNote:str?",
                 "A payment; payUrl is what the payer's QR code holds (alipay, wechat) until expiresAt. status "
                 "CREATED, PAID, CLOSED, FAILED (never opened), REFUNDED (refunds cover it). closeState: null, or "
                 "pending / closed / failed for a trade closed at the provider because its order was cancelled, "
                 "paid another way or switched channel (closeNote: the last error)")
REFUND = record("id:int refundNo:str paymentId:int orderId:int amount:int status:str providerRefundId:str? "
                "reason:str? source:str note:str? createdAt:time settledAt:time? updatedAt:time",
                "A refund. status PROCESSING, SUCCESS, ABNORMAL (WeChat: stuck; a later success settles it), "
                "CLOSED (WeChat closed it), FAILED (the provider refused: note says why), CANCELLED (given up). "
                "source: gateway, or provider (started in the merchant console, learnt from its notice)")
ORDER_DETAIL = record("", **ORDER["properties"], history=list_of(record(
    "fromStatus:int? toStatus:int cause:str at:time detail:obj?",
    "detail: for a correction {by, reason, before, after}")),
                       payments=list_of(ref("Payment")), refunds=list_of(ref("Refund")))
STATS_BUCKET = "orders:int energyWh:int amount:int paid:int refunded:int revenue:int"
BILL_TOTALS = record("payments:int paidAmount:int refunds:int refundedAmount:int fees:int settlement:int",
                     "the provider's bill for the day, summed (minor units): fees kept, amounts settled")
REPORT = record(
    "channel:str day:str timezone:str since:time until:time generatedAt:time providerQueried:bool source:str "
    "billError:str? payments:int paid:int paidAmount:int refundedAmount:int balanced:bool",
    "source: bill (the provider's daily bill, line by line), queries (trade by trade: the bill could not be had, "
    "billError says why) or ours. Kinds: payment_without_paid_order, amount_mismatch, double_payment, "
    "refund_mismatch, refund_failed, refund_pending, paid_order_without_payment; against the bill: unknown_trade, "
    "missed_payment, bill_amount_mismatch, missing_from_bill, refund_elsewhere, missed_refund, "
    "refund_amount_mismatch, refund_missing_from_bill; trade by trade: missed_payment, unconfirmed_payment, "
    "provider_unreachable",
    bill={"oneOf": [BILL_TOTALS, {"type": "null"}]},
    mismatches=list_of(record("kind:str tradeNo:str? orderNo:str? refundNo:str? providerAmount:int? ourAmount:int? "
                              "detail:str")))
