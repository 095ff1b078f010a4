"""A real Prometheus on 127.0.0.1 scraping a tiny in-process exporter whose
series the tests change. Used by the Prometheus gate and canary tests."""
from __future__ import annotations

import math
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import requests

from tests.helpers import loopback_http

PROMETHEUS_CANDIDATES = ("prometheus", "/usr/bin/prometheus")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    return free_port()


def prometheus_binary() -> str | None:
    for cand in PROMETHEUS_CANDIDATES:
        found = shutil.which(cand)
        if found:
            return found
    return None


def _fmt_value(v: float) -> str:
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    return repr(float(v))


class Exporter:
    """Serves /metrics from `series`: {(metric, ((label, value), ...)): number}."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.series: dict[tuple, float] = {}
        self.generation = 0
        exporter = self

        class Handler(loopback_http.Handler):
            def do_GET(self):  # noqa: N802
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                self.reply(200, exporter.render(), "text/plain; version=0.0.4")

        self.server = loopback_http.start(Handler)
        self.port = self.server.server_address[1]

    def render(self) -> str:
        with self.lock:
            lines = [f"kubehop_test_generation {self.generation}"]
            for (name, labels), value in sorted(self.series.items()):
                lab = ",".join(f'{k}="{v}"' for k, v in labels)
                lines.append(f"{name}{{{lab}}} {_fmt_value(value)}" if lab else f"{name} {_fmt_value(value)}")
            return "\n".join(lines) + "\n"

    def set(self, name: str, value: float, **labels: str) -> None:
        with self.lock:
            self.series[(name, tuple(sorted(labels.items())))] = value

    def replace(self, entries: list[tuple[str, dict, float]]) -> None:
        with self.lock:
            self.series = {(n, tuple(sorted(l.items()))): v for n, l, v in entries}

    def bump(self) -> int:
        with self.lock:
            self.generation += 1
            return self.generation

    def close(self) -> None:
        loopback_http.stop(self.server)


class Prometheus:
    """One prometheus process on a free loopback port with 1 s scrapes."""

    def __init__(self, binary: str, workdir: Path, exporter: Exporter) -> None:
        self.exporter = exporter
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "prometheus.yml"
        config.write_text(
            "global:\n"
            "  scrape_interval: 1s\n"
            "  scrape_timeout: 1s\n"
            "  evaluation_interval: 1s\n"
            "scrape_configs:\n"
            "  - job_name: exporter\n"
            "    static_configs:\n"
            f"      - targets: ['127.0.0.1:{exporter.port}']\n"
        )
        self.log_path = workdir / "prometheus.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def query(self, promql: str) -> list:
        r = requests.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=2)
        r.raise_for_status()
        return r.json()["data"]["result"]

    def wait_up(self, timeout: float = 10.0) -> None:
        """Answering HTTP (/-/ready), not necessarily scraped yet."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
            try:
                if requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"prometheus not ready within {timeout}s: {self.log_path.read_text()[-2000:]}")

    def wait_ready(self, timeout: float = 15.0) -> None:
        """Up, and the exporter scraped at least once."""
        self.sync(timeout=timeout)

    def sync(self, timeout: float = 8.0) -> None:
        """Block until Prometheus has scraped the exporter's current series."""
        want = self.exporter.bump()
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
            try:
                result = self.query("kubehop_test_generation")
                if result and float(result[0]["value"][1]) >= want:
                    return
                last = result
            except requests.RequestException as exc:
                last = exc
            time.sleep(0.1)
        raise RuntimeError(f"prometheus did not scrape generation {want} within {timeout}s (last: {last})")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()


def clean_proxy_env(monkeypatch) -> None:
    """Loopback only: never let a proxy setting redirect test traffic."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
