"""Settings…: every setting a user may change, validated as app.settings validates it, secrets
masked (issue 19) — the local API's, and the Flex statements' wherever the class declares them."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QCheckBox, QLineEdit

from app.settings import Settings, load_settings, save_settings
from app.ui.dialogs.settings_dialog import SettingsDialog


@pytest.fixture
def dialog_of(qapp):
    made: list[SettingsDialog] = []

    def make(settings: Settings) -> SettingsDialog:
        dialog = SettingsDialog(settings)
        made.append(dialog)
        return dialog

    yield make
    for dialog in made:
        dialog.deleteLater()


def _accept(dialog: SettingsDialog) -> Settings:
    dialog._check_and_accept()
    assert dialog.result() == dialog.DialogCode.Accepted, dialog.error.text()
    return dialog.result_settings()


def test_api_settings_round_trip_through_the_file(dialog_of, tmp_path):
    dialog = dialog_of(Settings(api_token="s3cret-token"))
    assert [dialog.tabs.tabText(i) for i in range(dialog.tabs.count())] == [
        "Connection", "Syncing", "Notifications", "Local API", "Statements",
    ]  # fmt: skip
    assert dialog.api_token.echoMode() == QLineEdit.EchoMode.Password  # masked
    show = dialog.findChild(QCheckBox, "api_tokenShow")
    show.setChecked(True)
    assert dialog.api_token.echoMode() == QLineEdit.EchoMode.Normal
    dialog.api_enabled.setChecked(True)
    dialog.api_host.setText("127.0.0.2")
    dialog.api_port.setValue(9123)
    dialog.api_token.setText("another-token")
    dialog.api_allow_remote.setChecked(True)
    chosen = _accept(dialog)
    assert (chosen.api_enabled, chosen.api_host, chosen.api_port) == (True, "127.0.0.2", 9123)
    assert (chosen.api_token, chosen.api_allow_remote) == ("another-token", True)
    saved = save_settings(chosen, tmp_path / "settings.json")
    assert "another-token" not in repr(chosen)  # never in logs
    again = dialog_of(Settings.model_validate_json(saved.read_text()))
    assert again.api_token.text() == "another-token" and again.api_port.value() == 9123
    assert again.api_enabled.isChecked() and again.api_allow_remote.isChecked()


def test_an_invalid_api_setting_is_refused_with_its_name(dialog_of):
    dialog = dialog_of(Settings())
    dialog.api_host.setText("   ")
    dialog._check_and_accept()
    assert dialog.result() != dialog.DialogCode.Accepted
    assert "api_host" in dialog.error.text()


def test_statement_settings_show_when_declared_and_round_trip(dialog_of):
    dialog = dialog_of(Settings(flex_token="tok-123", flex_query_id="987654"))
    tabs = [dialog.tabs.tabText(i) for i in range(dialog.tabs.count())]
    assert tabs[-1] == "Statements"
    token = dialog.findChild(QLineEdit, "flex_token")
    query = dialog.findChild(QLineEdit, "flex_query_id")
    url = dialog.findChild(QLineEdit, "flex_url")
    assert token.echoMode() == QLineEdit.EchoMode.Password and token.text() == "tok-123"
    assert query.echoMode() == QLineEdit.EchoMode.Normal and query.text() == "987654"
    token.setText(" new-token ")
    query.setText("111")
    url.setText("https://example.test/flex")
    chosen = _accept(dialog)
    assert (chosen.flex_token, chosen.flex_query_id, chosen.flex_url) == (
        "new-token", "111", "https://example.test/flex",
    )  # fmt: skip


def test_every_user_setting_has_an_editor(dialog_of):
    """Regression (issue 19): the API settings were in no dialog, only the file could change
    them. Every declared setting is edited by the dialog (tws_timezone and database_url
    included); only what the app writes itself is left out."""
    dialog = dialog_of(Settings())
    dialog._check_and_accept()
    edited = set(dialog._edited)
    assert set(Settings.model_fields) - edited == set()


def test_load_settings_still_reads_what_the_dialog_saved(tmp_path, monkeypatch):
    path = tmp_path / "s.json"
    monkeypatch.setenv("POSITION_SYNC_SETTINGS_FILE", str(path))
    save_settings(Settings(api_port=9999, api_enabled=True))
    assert load_settings().api_port == 9999


def test_cost_basis_is_chosen_in_the_dialog(dialog_of):
    """Issue 17: which realized figure totals show (average as TWS, FIFO as IB's tax lots) is a
    setting of the dialog too, and round-trips as the class's own value."""
    from PySide6.QtWidgets import QComboBox

    from app.domain.values import CostBasis

    dialog = dialog_of(Settings(cost_basis=CostBasis.FIFO))
    combo = dialog.findChild(QComboBox, "cost_basis")
    assert combo.currentData() == "fifo"
    combo.setCurrentIndex(combo.findData("average"))
    assert _accept(dialog).cost_basis is CostBasis.AVERAGE
