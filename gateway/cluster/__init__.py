"""Several gateway nodes on one PostgreSQL: who holds each charger's socket, and commands carried between the
nodes (node.py, the Trio side; notices.py and outcomes.py, pure; the SQL is gateway/store/cluster.py's)."""
