"""All SQL lives in this room. Callers await typed functions on a `Store` (store.py).

Every store method is one of three durabilities, declared where the method is (calls.py):

- committed: `await` it; it runs in the database thread's next batch and returns once that batch is
  committed. Reads are committed calls too: they see every write queued before them. A reader of the
  frame log or of meter values first waits until what was appended before the call is committed.
- batched: not awaited; queued for the next batch and committed with it, before any later call runs. The
  caller is not told of a failure (it is logged): for records nobody is answered on.
- appended: not awaited; frames and meter values are handed to the writer process (gateway/store/writer/), or to
  the database thread for a database without a file, and committed soon after in batches of their own.
  While the file fails the writer, meter values are refused at once (StoreUnavailable) and frames wait in
  memory (frame_log.py).

A call the file cannot take (locked, full, read-only, damaged) raises StoreUnavailable: nothing of it was kept.

This file imports nothing: the writer process (writer/) is started as `python -m gateway.store.writer.process`
and must not load Trio or the tables on its way. Import from the module that defines a name
(`gateway.store.store.open_store`, `gateway.store.health.StoreUnavailable`, ...).
"""
