"""The XNAi testbed: a small, faithful implementation of the stack's contract on real servers."""
