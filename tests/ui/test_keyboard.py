"""Keyboard: Ctrl+F focuses the filter; every window action sits in a menu with its shortcut."""

from __future__ import annotations

from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication

from app.ui.main_window import MainWindow


def _menu_actions(window: MainWindow) -> dict[str, str]:
    found: dict[str, str] = {}

    def walk(menu) -> None:
        for action in menu.actions():
            if action.menu() is not None:
                walk(action.menu())
            elif not action.isSeparator():
                found[action.text()] = action.shortcut().toString()

    for top in window.menuBar().actions():
        walk(top.menu())
    return found


def test_every_action_is_in_a_menu_with_its_shortcut(qapp):
    window = MainWindow()
    try:
        actions = _menu_actions(window)
        assert actions["Sync now"] == "F5"
        assert actions["Find…"] == QKeySequence(QKeySequence.StandardKey.Find).toString()
        assert actions["Mark closed…"] == "Ctrl+Shift+M"
        assert actions["Open positions…"] == "Ctrl+E"
        assert actions["All positions, open and closed…"] == "Ctrl+Shift+E"
        assert actions["Settings…"] and actions["Quit"]
    finally:
        window.deleteLater()


def test_ctrl_f_focuses_the_filter_and_mark_closed_follows_its_button(qapp):
    window = MainWindow()
    try:
        window.show()
        window.activateWindow()
        QApplication.processEvents()
        window.find_action.trigger()
        QApplication.processEvents()
        assert QApplication.focusWidget() is window.text_filter
        assert not window.mark_closed_action.isEnabled()
        window.mark_closed_button.setEnabled(True)
        assert window.mark_closed_action.isEnabled()
    finally:
        window.close()
        window.deleteLater()
