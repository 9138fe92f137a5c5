"""Missing Python packages: what is missing, the exact pip command, and a button that runs it.

Packages go into the plugin's per-ABI folder of the QGIS profile (see plugin.dependencies), never
into QGIS's own Python; pip runs in a QProcess so QGIS stays responsive, and can be cancelled.
"""

import html
from pathlib import Path

from qgis.core import QgsApplication
from qgis.PyQt.QtCore import QProcess, pyqtSignal
from qgis.PyQt.QtGui import QGuiApplication
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
)

from .. import dependencies


def deps_folder():
    """This profile's package folder for the running Python, e.g.
    <profile>/python/copgen_deps/cp311-linux_x86_64."""
    return dependencies.deps_folder(Path(QgsApplication.qgisSettingsDirPath()))


def missing_summary(statuses):
    """One line naming the missing packages, for the message bar."""
    names = [status.requirement.distribution for status in statuses if not status.ok]
    # The message bar titles it "COP-GEN-Beta": the text does not say the name again.
    return f"missing Python package{'s' if len(names) > 1 else ''}: {', '.join(names)}"


class DependenciesDialog(QDialog):
    """Shows every requirement's state; installs the missing ones into ``folder``.

    ``installed`` is emitted after a successful install (QGIS's sys.path already includes the folder).
    """

    installed = pyqtSignal()

    def __init__(self, folder=None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("COP-GEN-Beta: Python packages")
        self.folder = Path(folder) if folder is not None else deps_folder()
        self.job = None
        self.process = None
        self.statuses = []

        self.status = QLabel()
        self.status.setWordWrap(True)
        self.gpu = QCheckBox("Install the CUDA build of ONNX Runtime (onnxruntime-gpu, needs an NVIDIA GPU and CUDA)")
        self.gpu.toggled.connect(self.refresh)
        self.command = QPlainTextEdit()
        self.command.setReadOnly(True)
        self.command.setMaximumHeight(80)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setPlaceholderText("pip's output appears here.")
        copy = QPushButton("Copy command")
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.command.toPlainText()))
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.install_button = self.buttons.addButton("Install", QDialogButtonBox.ButtonRole.ActionRole)
        self.install_button.clicked.connect(self.install)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addWidget(self.gpu)
        layout.addWidget(QLabel("To install them yourself, run this in a terminal, then restart QGIS:"))
        layout.addWidget(self.command)
        layout.addWidget(copy)
        layout.addWidget(self.log)
        layout.addWidget(self.buttons)
        self.resize(720, 520)
        self.refresh()

    def requirements(self):
        """What Install would install: the missing packages pip may provide."""
        return dependencies.installable(self.statuses)

    def refresh(self):
        self.statuses = dependencies.check()
        todo = self.requirements()
        unfixable = [s.requirement.distribution for s in self.statuses if not s.ok and s.requirement.distribution in dependencies.PINNED]
        if todo:
            intro = (
                f"Missing: <b>{html.escape(', '.join(r.distribution for r in todo))}</b>. Install puts them into<br>"
                f"<code>{html.escape(str(self.folder))}</code><br>(for this plugin only; QGIS's own packages are not touched)."
            )
        elif unfixable:
            intro = f"<b>{html.escape(', '.join(unfixable))}</b> must come with QGIS itself: reinstall or update QGIS."
        else:
            intro = "All the packages COP-GEN-Beta needs are available."
        rows = "".join(_status_row(status) for status in self.statuses)
        self.status.setText(f"<p>{intro}</p><table cellspacing='6'>{rows}</table>")
        self.command.setPlainText(dependencies.manual_command(self.folder, todo, self.gpu.isChecked()) if todo else "")
        self.install_button.setEnabled(bool(todo) and self.process is None)
        self.gpu.setEnabled(self.process is None)

    def install(self):
        """Start pip in the background; the dialog stays usable and Close stops it."""
        self.job = dependencies.PipInstall(self.folder, self.requirements(), gpu=self.gpu.isChecked())
        command = self.job.prepare()
        self.log.setPlainText("$ " + " ".join(command))
        process = QProcess(self)
        process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        process.readyReadStandardOutput.connect(lambda: self._show_output(process))
        process.finished.connect(self._finished)
        process.errorOccurred.connect(self._failed_to_start)
        self.process = process
        self.install_button.setEnabled(False)
        self.gpu.setEnabled(False)
        process.start(command[0], command[1:])

    def _show_output(self, process):
        text = bytes(process.readAllStandardOutput()).decode(errors="replace").rstrip()
        if text:
            self.log.appendPlainText(text)

    def _failed_to_start(self, error):
        if error == QProcess.ProcessError.FailedToStart:
            self.log.appendPlainText(f"Could not start {self.job.command[0]}: run the command above in a terminal instead.")
            self._done(False)

    def _finished(self, exit_code, exit_status):
        self._show_output(self.process)
        self._done(exit_status == QProcess.ExitStatus.NormalExit and exit_code == 0)

    def _done(self, ok, stopped=False):
        if self.job is None:
            return
        job, self.job = self.job, None
        self.process.deleteLater()
        self.process = None
        if ok:
            try:
                job.finish()
                message = "Installed."
            except OSError as exc:
                message = f"pip succeeded, but moving its packages into {self.folder} failed: {exc}"
            dependencies.activate(self.folder)
        else:
            job.discard()
            message = "Installation stopped" if stopped else "Installation failed (see pip's output above)"
            message += "; nothing was changed."
        self.refresh()
        if ok and not self.requirements():
            message += " If an algorithm still reports a missing package, restart QGIS."
            self.installed.emit()
        elif ok:
            message += " Some packages still cannot be imported: see the table above."
        self.log.appendPlainText(message)

    def reject(self):
        """Close; a running pip is stopped and its partial install discarded."""
        if self.process is not None:
            process = self.process
            process.finished.disconnect(self._finished)
            process.kill()
            process.waitForFinished(5000)
            self._done(False, stopped=True)
        super().reject()


def _status_row(status):
    requirement = status.requirement
    if status.ok:
        state = html.escape(status.version)
    elif status.version:
        state = f"<b>too old: {html.escape(status.version)}</b>"
    else:
        state = "<b>missing</b>"
    return (
        f"<tr><td>{html.escape(requirement.distribution)}</td><td>{state}</td>"
        f"<td>≥ {html.escape(requirement.minimum)}</td><td>{html.escape(requirement.why)}</td></tr>"
    )
