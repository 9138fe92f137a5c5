"""The plugin's Processing dialogs fitted to the size they open with.

QGIS sizes a dialog's parameter column by its widest label and combo box item, without wrapping:
at the default size (about 690 px, half of it the help) a long label ("Sentinel-2 L1C true colour
condition: values are") or option pushes every widget past the visible width, behind a horizontal
scroll bar. Here labels wrap and combo boxes take the width they are given (their list still shows
whole items); once shown, the dialog grows, within the screen, if a widget still needs more width.
"""

from qgis.PyQt import sip
from qgis.PyQt.QtCore import QEvent, QObject, QTimer
from qgis.gui import QgsCollapsibleGroupBoxBasic
from qgis.PyQt.QtWidgets import QApplication, QComboBox, QGroupBox, QScrollArea

COMBO_MIN_CHARACTERS = 16


def wrapper_widgets(wrapper):
    """The editor widget and label of a Processing widget wrapper (C++ or the older Python kind)."""
    if hasattr(wrapper, "wrappedWidget"):
        return wrapper.wrappedWidget(), wrapper.wrappedLabel()
    return getattr(wrapper, "widget", None), getattr(wrapper, "label", None)


def fit_parameters(dialog):
    """Make ``dialog``'s parameters fit its width: wrap labels, let combo boxes shrink, widen the
    dialog (never past the screen) by what the widest widget still lacks."""
    panel = dialog.mainWidget()
    for wrapper in getattr(panel, "wrappers", {}).values():
        widget, label = wrapper_widgets(wrapper)
        if label is not None:
            label.setWordWrap(True)
        for combo in ([widget] if isinstance(widget, QComboBox) else []) + (widget.findChildren(QComboBox) if widget else []):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(COMBO_MIN_CHARACTERS)
    dialog.installEventFilter(_WidenOnShow(dialog))
    for group in panel.findChildren(QGroupBox):  # Advanced parameters: widen again when opened
        if group.inherits("QgsCollapsibleGroupBoxBasic"):
            sip.cast(group, QgsCollapsibleGroupBoxBasic).collapsedStateChanged.connect(
                lambda collapsed: None if collapsed else _widen_later(dialog)
            )


def widen_to_fit(dialog):
    """Grow ``dialog`` (within the screen) by the width its parameters' column lacks: a check
    box's text (the parameter's label) does not wrap."""
    area = dialog.mainWidget().findChild(QScrollArea)
    if area is None or area.widget() is None:
        return
    lacking = area.widget().minimumSizeHint().width() - area.viewport().width()
    if lacking > 0:
        screen = QApplication.primaryScreen().availableGeometry()
        dialog.resize(min(dialog.width() + lacking, screen.width()), dialog.height())


def _widen_later(dialog):
    """widen_to_fit once the event loop has laid the column out."""
    QTimer.singleShot(0, lambda: None if sip.isdeleted(dialog) else widen_to_fit(dialog))


class _WidenOnShow(QObject):
    """Widens its dialog once it is shown: only then are the column's widths laid out."""

    def eventFilter(self, watched, event):  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.Show:
            watched.removeEventFilter(self)
            _widen_later(watched)
        return False
