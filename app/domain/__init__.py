"""Pure domain: value types, reconcile() and P&L math. Standard library only."""
