"""The writer process and what it needs: standard library only, and never the store.

The gateway starts it beside itself as `python -m gateway.store.writer.process DB_PATH` (process.py) to commit
the frame log and meter values (rows.py); connection.py opens the file and takes its write lock, for the
writer and for the store's database thread alike. Importing this package imports neither Trio nor the
store, so that the process starts small.
"""
