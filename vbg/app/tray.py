"""The tray icon: switch background, pause, blur, show the window, quit; the window closes to it."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QAction, QActionGroup, QIcon
from PySide6.QtWidgets import QMenu, QSystemTrayIcon


class TrayMenu(QMenu):
    """The menu, built from the window's commands and gallery so both stay one list. `command(verb,
    args)` is the controller's handle; `state()` returns its status."""

    def __init__(self, command: Callable[[str, list[str]], dict], state: Callable[[], dict],
                 choices: Callable[[], list], show_window: Callable[[], None], quit_app: Callable[[], None]):
        super().__init__()
        self._command, self._state, self._choices = command, state, choices
        self.show_action = self.addAction("Show window", show_window)
        self.addSeparator()
        self.backgrounds = self.addMenu("Background")
        self.blur_action = self.addAction("Blur", lambda: command("blur", []))
        self.off_action = self.addAction("Camera as it is", lambda: command("off", []))
        self.next_action = self.addAction("Next background", lambda: command("next", []))
        self.addSeparator()
        self.pause_action = self.addAction("Pause camera", lambda: command("toggle", []))
        self.pause_action.setCheckable(True)
        self.addSeparator()
        self.quit_action = self.addAction("Quit vbg", quit_app)
        self.aboutToShow.connect(self.refresh)

    def refresh(self) -> None:
        """Checks the current background and the pause state: the menu never shows stale state."""
        state = self._state()
        self.pause_action.setChecked(bool(state.get("paused")))
        self.backgrounds.clear()
        group = QActionGroup(self.backgrounds)
        for choice in self._choices():
            action = QAction(choice.label, self.backgrounds, checkable=True)
            action.setChecked(choice.spec == state.get("background_spec"))
            action.triggered.connect(lambda _=False, spec=choice.spec: self._command("select", [spec]))
            group.addAction(action)
            self.backgrounds.addAction(action)


class Tray:
    """The icon itself, shown only where the desktop has a tray (`available`)."""

    def __init__(self, menu: TrayMenu, icon: QIcon, on_activate: Callable[[], None]):
        self.menu = menu
        self._picture, self._on_activate = icon, on_activate
        self.icon: QSystemTrayIcon | None = None
        self._told = False
        self.attach()

    @property
    def available(self) -> bool:
        return self.icon is not None

    def attach(self) -> bool:
        """Shows the icon if the desktop has a tray now (at login the panel may come after vbg)."""
        if self.icon is None and QSystemTrayIcon.isSystemTrayAvailable():
            self.icon = QSystemTrayIcon(self._picture)
            self.icon.setToolTip("vbg — virtual background")
            self.icon.setContextMenu(self.menu)
            self.icon.activated.connect(
                lambda reason: self._on_activate() if reason == QSystemTrayIcon.ActivationReason.Trigger else None)
            self.icon.show()
        return self.icon is not None

    @property
    def visible(self) -> bool:
        return self.icon is not None and self.icon.isVisible()

    def tell_once(self, title: str, text: str) -> None:
        if self.icon is not None and not self._told:
            self._told = True
            self.icon.showMessage(title, text, QSystemTrayIcon.MessageIcon.Information, 5000)

    def set_tooltip(self, text: str) -> None:
        if self.icon is not None:
            self.icon.setToolTip(text)

    def hide(self) -> None:
        if self.icon is not None:
            self.icon.hide()
