"""The "Install runtime" dialog: says which Python it installs for, runs install_runtime.py with that Python
in a QProcess and shows pip's log."""

from html import escape

from qgis.PyQt.QtCore import QProcess, Qt
from qgis.PyQt.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
)

from . import install_runtime
from .algorithms.common import runtime_description


class InstallRuntimeDialog(QDialog):
    def __init__(self, parent=None, package: str | None = None, gpu: str | None = None):
        super().__init__(parent)
        self.setWindowTitle("MoCoLSK: install a runtime")
        self.resize(720, 480)
        self.process = None
        self.exit_code = None
        gpu = install_runtime.nvidia_gpu() if gpu is None else gpu
        target = install_runtime.runtime_dir()
        self.python = install_runtime.qgis_python()
        self.qgis_version = install_runtime.qgis_python_version()
        self.numpy = install_runtime.numpy_version()
        version = install_runtime.interpreter_version(self.python)
        self.problem = install_runtime.interpreter_problem(self.python, version, self.qgis_version)
        self.intro = QLabel(
            "The MoCoLSK network needs ONNX Runtime (or PyTorch for the PyTorch backend) in the Python "
            f"that runs QGIS. pip installs it into {target}, a folder the plugin adds to Python's path; "
            "updating the plugin keeps it."
            + (f" NVIDIA GPU found: {gpu}, so ONNX Runtime with CUDA is offered first." if gpu else "")
        )
        self.intro.setWordWrap(True)
        self.interpreter = QLabel(
            escape(f"Python: {self.python} (version {version or 'unknown'}; QGIS runs {self.qgis_version})")
            + (f", numpy pinned to {self.numpy} as in QGIS" if self.numpy else "")
            + (f"<br><span style='color:#b00020'>{escape(self.problem)}</span>" if self.problem else "")
        )
        self.interpreter.setTextFormat(Qt.RichText)
        self.interpreter.setWordWrap(True)
        self.interpreter.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.choice = QComboBox()
        order = ["onnxruntime-gpu", "onnxruntime", "torch"] if gpu else ["onnxruntime", "torch"]
        for name in order:
            self.choice.addItem(f"{install_runtime.TITLES[name]} ({name})", name)
        if package in order:
            self.choice.setCurrentIndex(order.index(package))
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Close)
        self.install_button = QPushButton("Install")
        self.buttons.addButton(self.install_button, QDialogButtonBox.ActionRole)
        self.install_button.clicked.connect(self.start)
        self.install_button.setEnabled(self.problem is None)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        for widget in (self.intro, self.interpreter, self.choice, self.progress, self.log, self.buttons):
            layout.addWidget(widget)

    def start(self):
        """Run the installer for the chosen package; the log fills as pip writes."""
        package = self.choice.currentData()
        self.install_button.setEnabled(False)
        self.choice.setEnabled(False)
        self.buttons.button(QDialogButtonBox.Close).setEnabled(False)
        self.progress.setRange(0, 0)
        self.process = QProcess(self)
        self.process.setProcessChannelMode(QProcess.MergedChannels)
        self.process.readyReadStandardOutput.connect(self.read_output)
        self.process.finished.connect(self.finished)
        arguments = ["-u", "-X", "utf8", str(install_runtime.PLUGIN_DIR / "install_runtime.py"), package]
        arguments += ["--qgis-python-version", self.qgis_version]
        if self.numpy:
            arguments += ["--numpy", self.numpy]
        self.process.start(self.python, arguments)

    def reject(self):
        """Closing waits for pip: stopping it halfway could leave a broken package in the folder."""
        if self.process is not None and self.process.state() != QProcess.NotRunning:
            self.append("pip is still running; the dialog closes when it has finished.")
            return
        super().reject()

    def append(self, text: str) -> None:
        """Add ``text`` to the log and show its final line."""
        self.log.appendPlainText(text)
        bar = self.log.verticalScrollBar()
        bar.setValue(bar.maximum())

    def read_output(self):
        text = bytes(self.process.readAllStandardOutput()).decode("utf-8", "replace")
        self.append(text.rstrip("\n"))

    def finished(self, exit_code, _status=None):
        self.exit_code = exit_code
        self.progress.setRange(0, 1)
        self.progress.setValue(1 if exit_code == 0 else 0)
        self.install_button.setEnabled(exit_code != 0)
        self.buttons.button(QDialogButtonBox.Close).setEnabled(True)
        self.choice.setEnabled(exit_code != 0)
        if exit_code == 0:
            install_runtime.activate()
            runtime_description.cache_clear()
            self.append(
                "Done: run Downscale LST again (restart QGIS if it still says the runtime is missing)."
            )
