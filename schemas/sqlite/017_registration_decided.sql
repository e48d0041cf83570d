-- Whether the operator decided how a charger's BootNotification is answered (PUT
-- /api/chargers/{cpId}/registration). A charger's own boots also write registration_status (the answer
-- they got), so the status alone cannot tell a decision from a policy's answer: a charger the operator
-- registered is answered Accepted unless the operator decided otherwise.
ALTER TABLE charge_points ADD COLUMN registration_decided INTEGER NOT NULL DEFAULT 0
    CHECK (registration_decided IN (0, 1));
