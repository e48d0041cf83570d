-- Several gateway nodes on one PostgreSQL: who holds each charger's socket, and the commands on their way
-- to it. Written so that applying it twice changes nothing.

-- Every node, with the time it last said it is alive; a node silent longer than its lease has lost its chargers.
CREATE TABLE IF NOT EXISTS cluster_nodes (
    node_id      text PRIMARY KEY,
    channel      text NOT NULL,                 -- the node's LISTEN channel
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    lease_seconds double precision NOT NULL
);

-- The epoch of each connection: the newest connection of a charger holds the greatest one and wins.
CREATE SEQUENCE IF NOT EXISTS cluster_epoch;

-- The node whose socket a charger is connected to now, and since which connection.
CREATE TABLE IF NOT EXISTS cluster_owners (
    cp_id   text PRIMARY KEY,
    node_id text NOT NULL,
    epoch   bigint NOT NULL,
    since   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS cluster_owners_node ON cluster_owners (node_id);

-- Commands asked of a node that does not hold the charger: queued for the owner (node_id, for the connection
-- `epoch`), claimed by it exactly once, then done with the charger's answer or why there was none.
CREATE TABLE IF NOT EXISTS cluster_commands (
    id          bigserial PRIMARY KEY,
    request_id  text NOT NULL UNIQUE,           -- the OCPP unique id, as recorded in commands
    cp_id       text NOT NULL,
    node_id     text NOT NULL,                  -- the owner it is for
    epoch       bigint NOT NULL,
    requester   text NOT NULL,                  -- the node waiting for the answer
    action      text NOT NULL,
    payload     jsonb NOT NULL,
    state       text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'claimed', 'done')),
    outcome     text,                           -- once done: answered, call_error, timeout, not_connected, ...
    result      jsonb,                          -- the charger's payload, or the error's fields
    created_at  timestamptz NOT NULL DEFAULT now(),
    deadline    timestamptz NOT NULL,           -- not sent after this: the requester has given up
    claimed_at  timestamptz,
    done_at     timestamptz
);
CREATE INDEX IF NOT EXISTS cluster_commands_open ON cluster_commands (node_id, state) WHERE state <> 'done';
CREATE INDEX IF NOT EXISTS cluster_commands_done ON cluster_commands (done_at) WHERE state = 'done';
