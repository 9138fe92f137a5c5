"""What a user cannot see or reach in a dialog at the size it opens with (run inside QGIS).

:func:`layout_problems` lists, in words, each parameter widget or label of a Processing dialog
(or any page with a scroll area) that is cut off: outside the scroll area's content, wider
than the viewport (a horizontal scroll bar hides its end), squeezed below its minimum size, or
a label whose text does not fit. Collapsed groups (Advanced parameters) are opened first, since
a user opens them too. The dialog's minimum size must fit the screen, or it cannot be shown whole.
"""

COMBO_CHROME_PX = 30  # a combo box's frame and drop-down arrow (Fusion style)


def widget_and_label(wrapper):
    """The editor widget and label of a Processing widget wrapper (the plugin's accessor)."""
    import importlib

    return importlib.import_module("copgen_beta.plugin.qgisui.dialog_fit").wrapper_widgets(wrapper)


def open_collapsed_groups(root):
    """Expand every collapsible group (Advanced parameters) under ``root``; returns how many.
    Python sees them as QGroupBox: cast to reach setCollapsed."""
    from qgis.gui import QgsCollapsibleGroupBoxBasic
    from qgis.PyQt import sip
    from qgis.PyQt.QtWidgets import QApplication, QGroupBox

    groups = [group for group in root.findChildren(QGroupBox) if group.inherits("QgsCollapsibleGroupBoxBasic")]
    for group in groups:
        sip.cast(group, QgsCollapsibleGroupBoxBasic).setCollapsed(False)
    for _ in range(3):
        QApplication.processEvents()
    return len(groups)


def label_problem(label):
    """Why ``label``'s text is cut, or None."""
    from qgis.PyQt.QtCore import Qt
    from qgis.PyQt.QtGui import QTextDocument

    if not label.isVisible() or not label.text():
        return None
    width = label.contentsRect().width()
    if label.wordWrap() or label.textFormat() == Qt.TextFormat.RichText or "<" in label.text():
        needed = label.heightForWidth(width) if label.wordWrap() else label.sizeHint().height()
        if label.wordWrap() and needed > label.contentsRect().height() + 1:
            return f"label {plain(label.text())!r} needs {needed} px of height, has {label.contentsRect().height()}"
        if label.wordWrap() and label.contentsRect().height() > needed + label.fontMetrics().height():
            return f"label {plain(label.text())!r} is given {label.contentsRect().height()} px for {needed} px of text"
        if not label.wordWrap():
            document = QTextDocument()
            document.setDefaultFont(label.font())
            document.setHtml(label.text())
            if document.idealWidth() > width + 1:
                return f"label {plain(label.text())!r} needs {document.idealWidth():.0f} px, has {width}"
        return None
    needed = max(label.fontMetrics().horizontalAdvance(line) for line in label.text().splitlines())
    if needed > width + 1:
        return f"label {label.text()!r} needs {needed} px, has {width}"
    return None


def plain(text):
    import re

    return re.sub(r"<[^>]+>", "", text)[:60]


def widget_problem(name, widget, content, viewport_width):
    """Why the editor ``widget`` of parameter ``name`` is cut off in the scroll area ``content``."""
    from qgis.PyQt.QtCore import QPoint

    if widget is None or not widget.isVisibleTo(content):
        return None
    top_left = widget.mapTo(content, QPoint(0, 0))
    right, bottom = top_left.x() + widget.width(), top_left.y() + widget.height()
    if top_left.x() < 0 or top_left.y() < 0 or right > content.width() or bottom > content.height():
        return f"{name}: outside the scrolled content ({top_left.x()},{top_left.y()} to {right},{bottom} of {content.width()}x{content.height()})"
    if right > viewport_width:
        return f"{name}: ends at {right} px, the visible width is {viewport_width} px"
    hint = widget.minimumSizeHint()
    if widget.width() + 1 < hint.width():
        return f"{name}: {widget.width()} px wide, needs {hint.width()}"
    return combo_problem(name, widget)


def combo_problem(name, widget):
    """Why the text a combo box shows (of ``widget`` or inside it) is cut, or None."""
    from qgis.PyQt.QtWidgets import QComboBox

    for combo in ([widget] if isinstance(widget, QComboBox) else []) + widget.findChildren(QComboBox):
        if not combo.isVisible() or combo.isEditable():
            continue
        icon = 0 if combo.itemIcon(combo.currentIndex()).isNull() else combo.iconSize().width() + 4
        needed = combo.fontMetrics().horizontalAdvance(combo.currentText()) + icon
        room = combo.width() - COMBO_CHROME_PX
        if needed > room:
            return f"{name}: shows {combo.currentText()!r} cut ({needed} px in {room})"
    return None


def scroll_area_of(widget, root):
    from qgis.PyQt.QtWidgets import QScrollArea

    parent = widget.parentWidget()
    while parent is not None and parent is not root:
        if isinstance(parent, QScrollArea):
            return parent
        parent = parent.parentWidget()
    return None


def layout_problems(dialog, editors, page=None):
    """Problems (words) of ``dialog`` with ``editors`` {name: (widget, label)}; [] when whole.
    Editors outside a scroll area must lie inside ``page`` (when given)."""
    from qgis.PyQt.QtWidgets import QApplication

    problems = []
    screen = QApplication.primaryScreen().availableGeometry()
    minimum = dialog.minimumSizeHint().expandedTo(dialog.minimumSize())
    if minimum.width() > screen.width() or minimum.height() > screen.height():
        problems.append(f"minimum size {minimum.width()}x{minimum.height()} exceeds the screen {screen.width()}x{screen.height()}")
    if dialog.width() > screen.width() or dialog.height() > screen.height():
        problems.append(f"opens at {dialog.width()}x{dialog.height()}, larger than the screen")
    for name, (widget, label) in editors.items():
        if widget is None or not widget.isVisibleTo(dialog):
            continue
        area = scroll_area_of(widget, dialog)
        if area is not None:
            problem = widget_problem(name, widget, area.widget(), area.viewport().width())
        elif page is not None:
            problem = widget_problem(name, widget, page, page.width())
        else:
            problem = f"{name}: not in a scroll area"
        if problem:
            problems.append(problem)
        if label is not None and (problem := label_problem(label)):
            problems.append(f"{name}: {problem}")
    return problems


def processing_dialog_problems(dialog):
    """layout_problems of a Processing algorithm dialog's parameters, after opening its groups."""
    panel = dialog.mainWidget()
    opened = open_collapsed_groups(panel)
    editors = {name: widget_and_label(wrapper) for name, wrapper in panel.wrappers.items()}
    hidden = [name for name, (widget, _) in editors.items() if widget is not None and not widget.isVisibleTo(dialog)]
    problems = layout_problems(dialog, editors)
    return problems + [f"{name}: hidden after opening {opened} group(s)" for name in hidden]


def page_problems(dialog, page):
    """layout_problems of an options page: each of its input widgets, with its buddy label."""
    from qgis.PyQt.QtWidgets import QAbstractButton, QAbstractSpinBox, QComboBox, QLabel, QLineEdit

    open_collapsed_groups(page)
    buddies = {id(label.buddy()): label for label in page.findChildren(QLabel) if label.buddy() is not None}
    editors = {}
    for kind in (QLineEdit, QComboBox, QAbstractSpinBox, QAbstractButton):
        for widget in page.findChildren(kind):
            if isinstance(widget.parentWidget(), (QComboBox, QAbstractSpinBox, QLineEdit)):
                continue  # the editor inside a combo or spin box, a line edit's clear button
            name = widget.objectName() or widget.text() if hasattr(widget, "text") else widget.objectName()
            editors[name or f"{type(widget).__name__} {len(editors)}"] = (widget, buddies.get(id(widget)))
    problems = layout_problems(dialog, editors, page)
    for label in page.findChildren(QLabel):  # notes and summaries without a buddy
        if label.buddy() is None and (problem := label_problem(label)):
            problems.append(problem)
    return problems


def message_problem(item):
    """Why the text of a message bar ``item`` is cut (the bar shows one item's text in a fixed
    height, scrolled), or None."""
    from qgis.PyQt.QtWidgets import QApplication, QTextEdit

    for _ in range(3):
        QApplication.processEvents()
    for text in item.findChildren(QTextEdit):
        needed = text.document().size().height()
        if text.isVisible() and needed > text.viewport().height() + 1:
            return f"{item.title()!r}: its text needs {needed:.0f} px of height, has {text.viewport().height()}"
    return None
