"""The loader: files into a project's tables, exactly once (ledger.py), at COPY speed (binary.py).
sources.py resolves what to read, readers.py reads it, load.py runs a load."""

# what the CLI offers, without importing the loader (its modules load only when a load runs)
FORMATS = ("csv", "parquet", "jsonl")
MODES = ("append", "replace", "upsert")
