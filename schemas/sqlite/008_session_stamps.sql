-- Login tokens (JWT) carry their account's session stamp and are good only while it is unchanged:
-- a new password or a log out gives the account a new stamp and so ends every login token issued
-- before. A random stamp, not a counter: an account deleted and made again does not take back the
-- old account's tokens.
ALTER TABLE users ADD COLUMN session_stamp TEXT NOT NULL DEFAULT '';
UPDATE users SET session_stamp = lower(hex(randomblob(16)));
