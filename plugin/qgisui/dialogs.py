"""Processing dialogs the plugin opens itself (its menu entries, the layer action, the "no model"
bar's button).

``processing.createAlgorithmDialog`` hands back a Python ``AlgorithmDialog`` whose C++ side the
main window owns. Once the caller's last reference goes, Python collects the Python side: the
window stays on screen, but its Run button then calls the C++ base class, which does nothing.
The toolbox keeps its dialog referenced while it is open; so do we, here, until Qt deletes it.
"""

from qgis.PyQt import sip

_OPEN = {}  # id(dialog) -> dialog, each until Qt destroys it


def open_algorithm_dialog(algorithm_id, parameters=None):
    """Open (non-modal) the Processing dialog of ``algorithm_id``; returns it, or None without
    the algorithm. The dialog stays alive, and runs, however many are open."""
    import processing

    dialog = processing.createAlgorithmDialog(algorithm_id, parameters or {})
    if dialog is None:
        return None
    key = id(dialog)
    _OPEN[key] = dialog
    # The slot holds the key, not the dialog: no cycle keeps a deleted dialog's wrapper.
    dialog.destroyed.connect(lambda _=None, key=key: _OPEN.pop(key, None))
    dialog.show()
    return dialog


def open_dialogs():
    """The dialogs opened here that Qt has not deleted yet."""
    return [dialog for dialog in _OPEN.values() if not sip.isdeleted(dialog)]


def close_open_dialogs():
    """On unload: close them (a closed Processing dialog deletes itself) and let them go."""
    for dialog in open_dialogs():
        dialog.close()
    _OPEN.clear()
