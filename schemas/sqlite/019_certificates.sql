-- The certificate authority, the certificates it issued to chargers, the certificates installed on chargers,
-- and the firmware files the gateway signed (OCPP 1.6 security extension).

-- The gateway's signing keys: 'issuing' (charge point certificates) and 'firmware' (firmware signatures).
-- The private key is read by the gateway only: no route answers it.
CREATE TABLE certificate_authority (
    role TEXT PRIMARY KEY CHECK (role IN ('issuing', 'firmware')),
    certificate_pem TEXT NOT NULL,  -- the key's certificate
    chain_pem TEXT NOT NULL,        -- its issuers, up to and including the root ('' for a root)
    key_pem TEXT NOT NULL,
    imported INTEGER NOT NULL CHECK (imported IN (0, 1)),
    created_at TEXT NOT NULL
);

-- Charge point certificates the gateway issued (SignCertificate answered Accepted, then CertificateSigned).
CREATE TABLE issued_certificates (
    serial TEXT PRIMARY KEY,        -- lower-case hex
    charge_point_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    key_type TEXT NOT NULL,         -- 'RSA 2048', 'ECDSA secp256r1', ...
    not_before TEXT NOT NULL,
    not_after TEXT NOT NULL,
    certificate_pem TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    delivery TEXT,                  -- the charger's answer to CertificateSigned, or how sending it ended
    revoked_at TEXT,
    revocation_reason TEXT
);
CREATE INDEX issued_certificates_charger ON issued_certificates (charge_point_id, issued_at);
CREATE INDEX issued_certificates_expiry ON issued_certificates (not_after);

-- Certificates installed on a charger through the gateway (InstallCertificate answered Accepted).
CREATE TABLE installed_certificates (
    id INTEGER PRIMARY KEY,
    charge_point_id TEXT NOT NULL,
    certificate_type TEXT NOT NULL CHECK (certificate_type IN ('CentralSystemRootCertificate',
                                                                'ManufacturerRootCertificate')),
    certificate_pem TEXT NOT NULL,  -- the certificate sent, then (if not self-signed) its issuer
    subject TEXT NOT NULL,
    serial TEXT NOT NULL,
    not_after TEXT NOT NULL,
    status TEXT NOT NULL,           -- the InstallCertificate answer: Accepted, Failed, Rejected; or how it ended
    installed_at TEXT NOT NULL
);
CREATE INDEX installed_certificates_charger ON installed_certificates (charge_point_id, id);

-- What a charger last answered to GetInstalledCertificateIds, per certificate type.
CREATE TABLE reported_certificates (
    charge_point_id TEXT NOT NULL,
    certificate_type TEXT NOT NULL,
    status TEXT NOT NULL,           -- Accepted or NotFound
    hash_data TEXT NOT NULL,        -- JSON list of CertificateHashData
    reported_at TEXT NOT NULL,
    PRIMARY KEY (charge_point_id, certificate_type)
);

-- Firmware files signed by the gateway: uploaded (content kept and served to chargers) or fetched from a URL
-- (only the URL is kept).
CREATE TABLE firmware_files (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL DEFAULT 1,
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    content BLOB,                   -- NULL: fetched from source_url
    source_url TEXT,
    signature TEXT NOT NULL,        -- base64, SHA-256 with the firmware signing key
    signing_certificate_pem TEXT NOT NULL,
    created_at TEXT NOT NULL
);
