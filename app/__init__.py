"""Position Sync: a durable local ledger of Interactive Brokers positions."""

from __future__ import annotations

__version__ = "0.1.0"
