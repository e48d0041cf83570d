-- What the dashboard reads by time: sessions by the gateway's start time (trends, today and this
-- month, the hours of the day, the station ranking), each connector's status reports by the time they
-- were received and each charger's connect and disconnect events (time charging over time online:
-- the last report before a period and those within it, without reading a charger's whole history).
CREATE INDEX transactions_started ON transactions (started_at);
CREATE INDEX status_notifications_received ON status_notifications (charge_point_id, connector_id, received_at);
CREATE INDEX frames_events ON frames (charge_point_id, at) WHERE direction = 'event';
