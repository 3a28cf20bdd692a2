"""Embedded TWS-protocol gateway simulator (asyncio sockets, no ib_insync)."""
