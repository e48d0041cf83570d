"""What the SignCertificate handler tells the certificate service (gateway/events.py's hub carries it)."""

from __future__ import annotations

import attrs


@attrs.frozen
class CertificateRequested:
    """A charger's CSR passed the checks and was answered Accepted: a certificate is to be issued and sent."""
    cp_id: str
    csr: str
