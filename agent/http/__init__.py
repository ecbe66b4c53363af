"""The box's local HTTP API and status page; ``create_app`` builds it from the box's services."""

from agent.http.app import create_app
from agent.http.context import AppServices

__all__ = ["AppServices", "create_app"]
