-- OCPP security profiles per charger: 0 none, 1 HTTP Basic over ws, 2 Basic over TLS, 3 TLS client
-- certificates. The AuthorizationKey is kept as a salted SHA-256 ("salt$digest"), never as sent.
ALTER TABLE charge_points ADD COLUMN security_profile INTEGER NOT NULL DEFAULT 0;
ALTER TABLE charge_points ADD COLUMN authorization_key TEXT;
