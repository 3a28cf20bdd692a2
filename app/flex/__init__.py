"""IB Flex statements: the Activity Flex Query XML parser and the Flex Web Service client.

Produces app.domain.statements.Statement (pure values); storing it is app.db.statements' job.
No SQLAlchemy, no Qt, no ib_insync here (import-linter contracts in pyproject.toml).
"""
