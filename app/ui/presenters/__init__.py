"""The window's presenters: each one part of the window over the runtime holder (one room each).

The controller (app/ui/controller.py) builds them and connects the window's signals to them;
they share WindowState (app/ui/window_state.py), never one another's private state.
"""
