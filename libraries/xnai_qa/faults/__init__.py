"""Fault injection: backends (testbed processes, Docker, fault proxy) and the rollback ledger."""
