"""hts: high-throughput design of point defects in 2D materials (driver, data model, CLI)."""

from __future__ import annotations

__version__ = "0.1.0"
