"""IB adapter over ib_insync: the only package that imports ib_insync."""
