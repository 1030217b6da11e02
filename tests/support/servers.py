"""Re-export: tests serve apps the same way the demo does."""

from simulators.serving import serve_app

__all__ = ["serve_app"]
