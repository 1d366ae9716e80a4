"""Exceptions raised for input the analysis cannot use at all."""

from __future__ import annotations


class AnalysisError(Exception):
    """Input so broken that no report can be produced (message is shown to the user as is)."""
