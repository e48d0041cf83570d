-- The charger of each payment, its order's, kept on the payment: the money a charger's sessions brought in
-- over a period (the station ranking, the cities) is one range of an index per charger instead of a lookup
-- of every payment's order. An order's charger never changes; the trigger fills it on every insert, so no
-- path that records a payment can leave it out.
ALTER TABLE payments ADD COLUMN charge_point_id TEXT;
UPDATE payments SET charge_point_id = (SELECT o.charge_point_id FROM orders o WHERE o.id = payments.order_id);
CREATE TRIGGER payments_charger AFTER INSERT ON payments WHEN NEW.charge_point_id IS NULL BEGIN
    UPDATE payments SET charge_point_id = (SELECT o.charge_point_id FROM orders o WHERE o.id = NEW.order_id)
    WHERE id = NEW.id;
END;
CREATE INDEX payments_charger_paid ON payments (charge_point_id, paid_at, amount);

-- Sessions by hour of the site's day: the transactions of a period counted per quarter hour (every zone is
-- offset from UTC by whole quarter hours), read in quarter order so nothing is sorted.
CREATE INDEX transactions_started_quarter
    ON transactions (CAST(strftime('%s', started_at) AS INTEGER) / 900, started_at, energy_wh);
