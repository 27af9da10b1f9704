"""Tests of the testbed: its servers, supervisor, fault proxy and CLI (they start real servers)."""
