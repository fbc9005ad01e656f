"""Spreadsheet formula-injection protection for the cells we write and read back.

A cell whose text starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return can be run as a formula when a CSV file is opened in a spreadsheet
(the OWASP "CSV injection" class). Every text cell we write gets a leading
apostrophe in that case, and our readers remove exactly that apostrophe again,
so a result file uploaded as a new batch reads the same values as the original.
"""

from __future__ import annotations

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
PROTECTIVE_PREFIX = "'"


def protect_cell(text: str) -> str:
    """Return ``text`` with an apostrophe in front if a spreadsheet could run it as a formula."""
    if text.startswith(FORMULA_TRIGGERS):
        return PROTECTIVE_PREFIX + text
    return text


def unprotect_cell(text: str) -> str:
    """Remove the apostrophe that ``protect_cell`` added; any other text is returned unchanged."""
    if text.startswith(PROTECTIVE_PREFIX) and text[1:].startswith(FORMULA_TRIGGERS):
        return text[1:]
    return text
