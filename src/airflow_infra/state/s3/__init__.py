"""The S3 state backend: the state object written with compare-and-swap, and leased locks.

- State: `<key>`, SSE-encrypted, written with If-Match on the ETag last read (If-None-Match: * for
  the first write), so a writer that lost its lock can never overwrite newer state.
- Lock "s3": an object `<key>.lock` created with If-None-Match: *, holding LockInfo and `expires`.
- Lock "dynamodb": Terraform's shape, an item LockID = "<bucket>/<key>" with an Info JSON attribute,
  written with a conditional put, so an existing Terraform lock table serves as it is.
- Leases: the holder renews `expires` (a conditional write on what it wrote last) every third of
  the lease; a lock whose lease ran out may be taken over, conditionally, so two waiters never both win.
- Fencing: before every step and every write the holder checks its lease on a clock that runs on
  while the process is stopped (CLOCK_BOOTTIME: SIGSTOP, a closed lid), and stops when it may have
  run out. A take-over first rewrites the state object naming the new lock's ID (its ETag changes),
  so a stale holder's conditional write fails even if its clock check was passed just before it
  stopped. Each write names the lock it was made under ("lock").
- Stores differ (s3rver ignores If-None-Match and If-Match): a probe, once per bucket and process,
  checks both on a fixed object (PROBE_KEY; two calls once it exists, each refused by an honest
  store, so nothing is written). On a store that ignores them the S3 lock is refused; with the
  DynamoDB lock, compare-and-swap moves into the lock table: Terraform's "<bucket>/<key>-md5" item
  holds the state's MD5 (Terraform's Digest), serial and lineage. A write puts its state under a
  name of its own (<key>.states/<serial>-<md5>.json, never overwritten), then moves the digest,
  conditionally on the one it read (the commit), then copies it to <key>. A reader trusts the
  digest: where <key> differs (a write cut short before its copy, or a stopped holder's late copy
  after a take-over), the state the digest names is read. A lost update is then impossible too.
"""

from __future__ import annotations

from .backend import PROBE_KEY, S3StateBackend, forget_probes
from .bootstrap import bootstrap
from .locks import _Digest

__all__ = ["PROBE_KEY", "S3StateBackend", "_Digest", "bootstrap", "forget_probes"]
