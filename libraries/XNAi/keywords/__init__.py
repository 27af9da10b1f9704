"""The XNAi library's components, one module per concern (see ``XNAi/__init__.py``)."""
