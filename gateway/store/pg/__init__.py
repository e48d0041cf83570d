"""PostgreSQL as the store: chosen when the `db` setting is a postgresql:// URL.

The same job functions run on a psycopg 3 connection (connection.py makes it answer as sqlite3's does), in
Trio worker threads under a limiter the size of the pool (database.py); the schema is schemas/postgresql/
(migrations.py); frames and meter values are partitioned by day (partitions.py) and shipped by the writer
process with COPY (rows.py).
"""
