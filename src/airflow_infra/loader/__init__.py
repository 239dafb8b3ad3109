"""The loader: files into a project's tables, exactly once (ledger.py), at COPY speed (binary.py).
sources.py resolves what to read, readers.py reads it, load.py runs a load."""
