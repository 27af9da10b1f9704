"""Unit tests of the library, its engines and the tools (no testbed started)."""
