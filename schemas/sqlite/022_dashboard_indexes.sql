-- What the dashboard reads, each index holding every column its sums read, so a period costs one pass over
-- an index and no lookup in the table: sessions by the gateway's start time (trends, today and this month,
-- the hours of the day) and per charger (the station ranking, cities); orders by creation, and per charger;
-- the money that moved: payments by the time they were paid, refunds by the time they succeeded; each
-- connector's status reports by the time they were received and each charger's connect and disconnect
-- events (time charging over time online: the last report before a period and those within it, without
-- reading a charger's whole history).
CREATE INDEX transactions_started ON transactions (started_at, charge_point_id, energy_wh);
CREATE INDEX orders_created_sums ON orders (created_at, charge_point_id, status, energy_wh, total_amount);
CREATE INDEX transactions_charger_started ON transactions (charge_point_id, started_at, energy_wh);
CREATE INDEX orders_charger_created ON orders (charge_point_id, created_at, status, total_amount);
CREATE INDEX payments_paid ON payments (paid_at, order_id, amount);
CREATE INDEX refunds_settled ON refunds (status, settled_at, order_id, amount);
CREATE INDEX status_notifications_received ON status_notifications (charge_point_id, connector_id, received_at);
CREATE INDEX frames_events ON frames (charge_point_id, at) WHERE direction = 'event';
