"""Shared logic behind the XNAi suite's keyword libraries (no Robot keywords here)."""
