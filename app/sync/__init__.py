"""PositionSyncService: triggers, single flight, statistics. asyncio only."""
