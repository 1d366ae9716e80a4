"""Kept for imports from before ``signaling/routing/``: the router interface and the local router."""

from signaling.routing.base import Admission, OpenAdmission, Router
from signaling.routing.local import LocalRouter

__all__ = ["Admission", "LocalRouter", "OpenAdmission", "Router"]
