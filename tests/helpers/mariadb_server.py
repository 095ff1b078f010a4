"""Throw-away MariaDB servers on 127.0.0.1 for the replication gate tests.

Each server gets its own datadir, unix socket and free TCP port, is started
with --no-defaults (no /etc/mysql config leaks in) and --skip-name-resolve,
and is killed by stop(). Accounts are created for '127.0.0.1' because that is
the host a TCP client from 127.0.0.1 matches under --skip-name-resolve (an
anonymous ''@'localhost' account, where an installer makes one, would shadow a
'user'@'%' account; the helper drops anonymous accounts as well).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pymysql

MARIADBD_CANDIDATES = ("mariadbd", "/usr/sbin/mariadbd", "/usr/libexec/mariadbd", "mysqld", "/usr/sbin/mysqld")
INSTALL_DB_CANDIDATES = ("mariadb-install-db", "/usr/bin/mariadb-install-db", "mysql_install_db")

# Small and quiet: startup of both servers stays around a second.
SERVER_OPTIONS = (
    "--innodb-buffer-pool-size=16M",
    "--innodb-log-file-size=4M",
    "--innodb-use-native-aio=0",  # io_uring/libaio are often unavailable in containers
    "--performance-schema=OFF",
    "--skip-name-resolve",
    "--bind-address=127.0.0.1",
    "--log-bin=mysql-bin",
    "--relay-log=relay-bin",
    "--skip-slave-start",
    "--max-connections=50",
)


def _die_with_parent() -> None:
    """Linux: SIGKILL the server if the test process dies without teardown."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class MariaDBMissing(RuntimeError):
    pass


def _which(candidates) -> str | None:
    for name in candidates:
        found = shutil.which(name) if "/" not in name else (name if os.access(name, os.X_OK) else None)
        if found:
            return found
    return None


def find_binaries() -> tuple[str, str]:
    mariadbd = _which(MARIADBD_CANDIDATES)
    install_db = _which(INSTALL_DB_CANDIDATES)
    if not mariadbd or not install_db:
        raise MariaDBMissing(
            "MariaDB server binaries not found (need mariadbd and mariadb-install-db): "
            "install them with `apt-get install -y mariadb-server mariadb-client`"
        )
    return mariadbd, install_db


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def install_datadir(datadir: Path, install_db: str) -> None:
    """A fresh system-table datadir; root has no password (normal auth)."""
    result = subprocess.run(
        [
            install_db,
            "--no-defaults",
            f"--datadir={datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--skip-name-resolve",
            "--user=root",
            "--innodb-log-file-size=4M",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"mariadb-install-db failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


class MariaDBServer:
    def __init__(self, mariadbd: str, base: Path, name: str, server_id: int, datadir: Path):
        self.mariadbd = mariadbd
        self.name = name
        self.server_id = server_id
        self.datadir = datadir
        self.socket = base / f"{name}.sock"
        self.log = base / f"{name}.err"
        self.pid_file = base / f"{name}.pid"
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> None:
        self.port = free_port()
        argv = [
            self.mariadbd,
            "--no-defaults",  # must come first
            f"--datadir={self.datadir}",
            f"--socket={self.socket}",
            f"--port={self.port}",
            f"--pid-file={self.pid_file}",
            f"--log-error={self.log}",
            f"--server-id={self.server_id}",
            "--user=root",
            *SERVER_OPTIONS,
        ]
        # preexec_fn only calls prctl; the server dies with the thread that started it
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,  # noqa: PLW1509
        )
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name}: mariadbd exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.connect().close()
                return
            except pymysql.err.OperationalError as exc:
                last = exc
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name}: not ready after {timeout}s ({last}):\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no error log)"

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def connect(self, user: str = "root", password: str = "", **kwargs) -> pymysql.connections.Connection:
        return pymysql.connect(
            host="127.0.0.1",
            port=self.port,
            user=user,
            password=password,
            autocommit=True,
            connect_timeout=5,
            **kwargs,
        )

    def execute(self, *statements: str) -> list:
        """Run statements as root in one session; returns the last result set."""
        rows: list = []
        with self.connect(cursorclass=pymysql.cursors.DictCursor) as conn, conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
                rows = list(cur.fetchall())
        return rows

    def replica_status(self) -> dict:
        rows = self.execute("SHOW SLAVE STATUS")
        return rows[0] if rows else {}


def _sql_str(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class ReplicationPair:
    """A primary and a replica of it, plus a monitoring account on both."""

    REPL_USER = "repl"
    REPL_PASSWORD = "repl-pw-9f2c"

    def __init__(self, base: Path, monitor_user: str, monitor_password: str):
        self.base = base
        self.monitor_user = monitor_user
        self.monitor_password = monitor_password
        mariadbd, install_db = find_binaries()
        template = base / "template"
        install_datadir(template, install_db)
        # One install, copied: the replica starts from an identical datadir.
        shutil.copytree(template, base / "primary-data", symlinks=True)
        shutil.copytree(template, base / "replica-data", symlinks=True)
        self.primary = MariaDBServer(mariadbd, base, "primary", 1, base / "primary-data")
        self.replica = MariaDBServer(mariadbd, base, "replica", 2, base / "replica-data")

    def start(self) -> None:
        self.primary.start()
        self.replica.start()
        accounts = [
            "SET sql_log_bin=0",
            "DELETE FROM mysql.global_priv WHERE User=''",  # anonymous accounts, if any
            "FLUSH PRIVILEGES",
            f"CREATE USER {_sql_str(self.monitor_user)}@'127.0.0.1' IDENTIFIED BY {_sql_str(self.monitor_password)}",
            # least privilege for SHOW REPLICA STATUS on MariaDB >= 10.5.9
            # (MySQL: REPLICATION CLIENT)
            f"GRANT REPLICA MONITOR ON *.* TO {_sql_str(self.monitor_user)}@'127.0.0.1'",
        ]
        self.primary.execute(
            *accounts,
            f"CREATE USER '{self.REPL_USER}'@'127.0.0.1' IDENTIFIED BY {_sql_str(self.REPL_PASSWORD)}",
            f"GRANT REPLICATION SLAVE ON *.* TO '{self.REPL_USER}'@'127.0.0.1'",
        )
        self.replica.execute(*accounts)
        self.replica.execute(
            "CHANGE MASTER TO "
            f"MASTER_HOST='127.0.0.1', MASTER_PORT={self.primary.port}, "
            f"MASTER_USER='{self.REPL_USER}', MASTER_PASSWORD={_sql_str(self.REPL_PASSWORD)}, "
            "MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=slave_pos",
            "START SLAVE",
        )
        self.primary.execute(
            "CREATE DATABASE IF NOT EXISTS kubehop_test",
            "CREATE TABLE IF NOT EXISTS kubehop_test.t (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB",
        )
        self.wait_caught_up()

    def stop(self) -> None:
        for server in (self.replica, self.primary):
            server.stop()

    def wait_caught_up(self, timeout: float = 15) -> None:
        """Both threads running and every primary transaction applied."""
        pos = self.primary.execute("SELECT @@gtid_binlog_pos AS pos")[0]["pos"]
        rows = self.replica.execute(f"SELECT MASTER_GTID_WAIT({_sql_str(pos)}, {timeout}) AS r")
        status = self.replica.replica_status()
        if rows[0]["r"] != 0 or status.get("Slave_SQL_Running") != "Yes" or status.get("Slave_IO_Running") != "Yes":
            raise RuntimeError(f"replica did not catch up to {pos}: {status}\n{self.replica.log_tail()}")

    def repair(self) -> None:
        """Back to healthy replication after a test broke it on purpose."""
        self.replica.execute(
            "STOP SLAVE",
            "CHANGE MASTER TO MASTER_DELAY=0",
            "DELETE FROM kubehop_test.t WHERE id >= 1000",  # rows a conflict test planted on the replica
            "START SLAVE",
        )
        self.wait_caught_up()
