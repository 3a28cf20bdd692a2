"""Dialogs, opened with open() and awaited, never exec() inside a coroutine."""
