"""The OCPP-J 1.6 CALLERROR codes, spelled exactly as the 1.6 specification does."""

from __future__ import annotations

import enum


class ErrorCode(str, enum.Enum):
    NOT_IMPLEMENTED = "NotImplemented"
    NOT_SUPPORTED = "NotSupported"
    INTERNAL_ERROR = "InternalError"
    PROTOCOL_ERROR = "ProtocolError"
    SECURITY_ERROR = "SecurityError"
    FORMATION_VIOLATION = "FormationViolation"
    PROPERTY_CONSTRAINT_VIOLATION = "PropertyConstraintViolation"
    # 1.6 misspells "Occurrence"; chargers match on this exact string.
    OCCURENCE_CONSTRAINT_VIOLATION = "OccurenceConstraintViolation"
    TYPE_CONSTRAINT_VIOLATION = "TypeConstraintViolation"
    GENERIC_ERROR = "GenericError"


class OcppError(Exception):
    """A failure that should reach the peer as a CALLERROR."""

    def __init__(self, code: ErrorCode, description: str, details: dict | None = None):
        super().__init__(f"{code.value}: {description}")
        self.code = code
        self.description = description
        self.details = details or {}
