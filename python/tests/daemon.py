"""A real sparsepoold on a shm region of its own, for the Python tests and the example's
test (SPARSEPOOLD names the binary; by default the one Bazel built)."""

import os
import pathlib
import signal
import subprocess
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]


class Daemon:
    def __init__(self, name: str, size: str = "64MiB", extra=()) -> None:
        self.binary = os.environ.get("SPARSEPOOLD", str(ROOT / "bazel-bin" / "service" / "sparsepoold"))
        self.region = f"/dev/shm/sparsepool-pytest-{name}-{os.getpid()}"
        self.dir = tempfile.TemporaryDirectory()
        self.port_file = os.path.join(self.dir.name, "port")
        self.log = open(os.path.join(self.dir.name, "log"), "w+")
        self.args = [self.binary, "--listen=127.0.0.1:0", f"--region=shm:{self.region}:{size}",
                     f"--port_file={self.port_file}", "--reuse_grace=0s", *extra]
        self.process = None
        self.address = None

    def start(self) -> None:
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        self.process = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                port = int(open(self.port_file).read().strip() or 0)
            except (FileNotFoundError, ValueError):
                port = 0
            if port > 0:
                self.address = f"127.0.0.1:{port}"
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.01)
        self.log.seek(0)
        raise RuntimeError(f"sparsepoold did not start: {self.log.read()}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
        if os.path.exists(self.region):
            os.unlink(self.region)
        self.dir.cleanup()
