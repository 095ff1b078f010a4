"""`mysql-replication` against a real MariaDB primary + replica on 127.0.0.1."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pymysql
import pytest

REPO = Path(__file__).resolve().parents[2]

from kubehop.gates import cli
from kubehop.gates import mysql as gate
from tests.helpers.mariadb_server import MariaDBMissing, ReplicationPair, free_port

MONITOR_USER = "kubehop"
MONITOR_PASSWORD = "gate-Pw-7c1e-secret"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run_gate_subprocess(*args: str, password: str | None = MONITOR_PASSWORD) -> Result:
    """`python -m kubehop gate mysql-replication ...` end to end."""
    env = {k: v for k, v in os.environ.items() if k != gate.PASSWORD_ENV}
    if password is not None:
        env[gate.PASSWORD_ENV] = password
    done = subprocess.run(
        [sys.executable, "-m", "kubehop", "gate", "mysql-replication", *args],
        check=False,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def run_gate(monkeypatch, capsys):
    """The gate CLI in this process (fast): exit code and captured output."""

    def run(*args: str, password: str | None = MONITOR_PASSWORD) -> Result:
        if password is None:
            monkeypatch.delenv(gate.PASSWORD_ENV, raising=False)
        else:
            monkeypatch.setenv(gate.PASSWORD_ENV, password)
        try:
            rc = cli.main(["mysql-replication", *args])
        except SystemExit as exc:  # argparse usage errors
            rc = exc.code
        captured = capsys.readouterr()
        return Result(rc, captured.out, captured.err)

    return run


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    try:
        pair = ReplicationPair(tmp_path_factory.mktemp("mariadb"), MONITOR_USER, MONITOR_PASSWORD)
    except MariaDBMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        pair.start()
        yield pair
    finally:
        pair.stop()


@pytest.fixture
def healthy(pair):
    """Every test starts from caught-up replication and leaves it repaired."""
    pair.wait_caught_up()
    yield pair
    pair.repair()


def replica_args(pair, *extra: str) -> list[str]:
    return ["--host", "127.0.0.1", "--port", str(pair.replica.port), "--user", MONITOR_USER, *extra]


def assert_no_password(result: Result) -> None:
    assert MONITOR_PASSWORD not in result.stdout + result.stderr


def test_healthy_replica_passes(healthy):
    healthy.primary.execute("INSERT INTO kubehop_test.t VALUES (1, 1), (2, 2), (3, 3)")
    healthy.wait_caught_up()
    assert healthy.replica.execute("SELECT COUNT(*) AS n FROM kubehop_test.t WHERE id < 1000")[0]["n"] >= 3

    result = run_gate_subprocess(*replica_args(healthy, "--timeout", "10", "--interval", "0.2"))

    assert result.returncode == 0, result.stderr
    assert "gate mysql-replication passed" in result.stderr
    assert "io_thread=Yes sql_thread=Yes lag=0s" in result.stderr
    assert "source=127.0.0.1" in result.stderr
    assert_no_password(result)


def test_default_connection_by_channel_passes(healthy, run_gate):
    # --channel '' selects MariaDB's default connection via the channel syntax.
    result = run_gate(*replica_args(healthy, "--channel", "", "--timeout", "0"))
    assert result.returncode == 0, result.stderr


def test_unknown_channel_fails(healthy, run_gate):
    result = run_gate(*replica_args(healthy, "--channel", "nope", "--timeout", "0"))
    assert result.returncode == 1, result.stderr
    assert "nope" in result.stderr
    assert "FAILED" in result.stderr


def test_stopped_sql_thread_fails(healthy, run_gate):
    healthy.replica.execute("STOP SLAVE SQL_THREAD")

    result = run_gate(*replica_args(healthy, "--timeout", "0"))

    assert result.returncode == 1, result.stderr
    assert "gate mysql-replication FAILED" in result.stderr
    assert "SQL thread not running (No)" in result.stderr
    assert "lag is NULL" in result.stderr
    assert "IO thread not running" not in result.stderr


def test_stopped_io_thread_fails(healthy, run_gate):
    healthy.replica.execute("STOP SLAVE IO_THREAD")

    result = run_gate(*replica_args(healthy, "--timeout", "0"))

    assert result.returncode == 1, result.stderr
    assert "IO thread not running (No)" in result.stderr
    assert "SQL thread not running" not in result.stderr


def test_sql_error_fails_and_names_it(healthy, run_gate):
    # A row planted on the replica conflicts with the same row from the primary.
    healthy.replica.execute("INSERT INTO kubehop_test.t VALUES (1001, 0)")
    healthy.primary.execute("INSERT INTO kubehop_test.t VALUES (1001, 1)")
    deadline = time.monotonic() + 10
    while healthy.replica.replica_status().get("Slave_SQL_Running") == "Yes" and time.monotonic() < deadline:
        time.sleep(0.05)

    result = run_gate(*replica_args(healthy, "--timeout", "0"))

    assert result.returncode == 1, result.stderr
    assert "SQL thread not running (No)" in result.stderr
    assert "last_sql_error=" in result.stderr
    assert "Duplicate entry '1001'" in result.stderr


def test_lag_over_max_fails_and_under_max_passes(healthy, run_gate):
    # A delayed replica holding an event the primary stamped an hour ago
    # reports ~3600 s behind while both threads keep running.
    healthy.replica.execute("STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY=86400", "START SLAVE")
    healthy.primary.execute(
        "SET timestamp = UNIX_TIMESTAMP() - 3600",
        "INSERT INTO kubehop_test.t VALUES (10, 10)",
    )
    deadline = time.monotonic() + 10
    while (healthy.replica.replica_status().get("Seconds_Behind_Master") or 0) < 3000:
        assert time.monotonic() < deadline, healthy.replica.replica_status()
        time.sleep(0.05)

    too_late = run_gate(*replica_args(healthy, "--max-lag", "30", "--timeout", "0"))
    lenient = run_gate(*replica_args(healthy, "--max-lag", "7200", "--timeout", "0"))

    assert too_late.returncode == 1, too_late.stderr
    assert "> max 30s" in too_late.stderr
    assert "io_thread=Yes sql_thread=Yes lag=36" in too_late.stderr
    assert lenient.returncode == 0, lenient.stderr


def test_gate_polls_until_replication_recovers(healthy, run_gate):
    healthy.replica.execute("STOP SLAVE SQL_THREAD")
    restart = threading.Timer(1.0, healthy.replica.execute, args=("START SLAVE SQL_THREAD",))
    restart.start()
    try:
        result = run_gate(*replica_args(healthy, "--timeout", "20", "--interval", "0.3"))
    finally:
        restart.join()

    assert result.returncode == 0, result.stderr
    assert "attempt 1: waiting: SQL thread not running" in result.stderr
    assert ": ok: " in result.stderr


def test_primary_is_not_a_replica(pair, run_gate):
    result = run_gate("--host", "127.0.0.1", "--port", str(pair.primary.port), "--user", MONITOR_USER, "--timeout", "0")

    assert result.returncode == 1, result.stderr
    assert "not a replica" in result.stderr


def test_unreachable_server_fails_closed(run_gate):
    port = free_port()  # nothing listens there: a stopped server
    result = run_gate("--host", "127.0.0.1", "--port", str(port), "--user", MONITOR_USER, "--timeout", "0")

    assert result.returncode == 1, result.stderr
    assert f"cannot connect to 127.0.0.1:{port}" in result.stderr
    assert_no_password(result)


def test_silent_server_is_bounded_by_connect_timeout(run_gate):
    # Accepts TCP but never sends a handshake: a hung server must not hang the gate.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        port = listener.getsockname()[1]
        start = time.monotonic()
        result = run_gate(
            "--host", "127.0.0.1", "--port", str(port), "--user", MONITOR_USER,
            "--connect-timeout", "1", "--timeout", "0",
        )
        elapsed = time.monotonic() - start

    assert result.returncode == 1, result.stderr
    assert "cannot connect" in result.stderr
    assert elapsed < 10


def test_wrong_password_fails_without_echoing_it(pair, run_gate):
    wrong = "Wr0ng-pa55-do-not-print"
    result = run_gate(*replica_args(pair, "--timeout", "0"), password=wrong)

    assert result.returncode == 1, result.stderr
    assert "Access denied" in result.stderr
    assert wrong not in result.stdout + result.stderr


def test_password_comes_only_from_environment(pair, run_gate):
    no_env = run_gate(*replica_args(pair, "--timeout", "0"), password=None)
    assert no_env.returncode == 1
    assert gate.PASSWORD_ENV in no_env.stderr

    in_argv = run_gate(*replica_args(pair, "--password", MONITOR_PASSWORD), password=None)
    assert in_argv.returncode == 2
    assert "unrecognized arguments" in in_argv.stderr


# --- the parts that need no server: other servers' column names and syntax ---

MYSQL8_HEALTHY = {
    "Channel_Name": "",
    "Source_Host": "10.0.0.5",
    "Replica_IO_Running": "Yes",
    "Replica_SQL_Running": "Yes",
    "Seconds_Behind_Source": 4,
    "Last_IO_Error": "",
    "Last_SQL_Error": "",
}


def test_mysql8_column_names_pass():
    verdict = gate.evaluate([MYSQL8_HEALTHY], max_lag=30)
    assert verdict.ok, verdict.detail
    assert "io_thread=Yes sql_thread=Yes lag=4s" in verdict.detail


def test_mysql8_column_names_fail_on_io_error_and_null_lag():
    row = dict(MYSQL8_HEALTHY, Replica_IO_Running="Connecting", Seconds_Behind_Source=None,
               Last_IO_Error="error connecting to source 'repl@10.0.0.5:3306'")
    verdict = gate.evaluate([row], max_lag=30)
    assert not verdict.ok
    assert "IO thread not running (Connecting)" in verdict.detail
    assert "lag is NULL" in verdict.detail
    assert "error connecting to source" in verdict.detail


def test_every_channel_must_be_healthy():
    bad = dict(MYSQL8_HEALTHY, Channel_Name="b", Replica_SQL_Running="No", Last_SQL_Error="boom")
    verdict = gate.evaluate([dict(MYSQL8_HEALTHY, Channel_Name="a"), bad], max_lag=30)
    assert not verdict.ok
    assert "channel=b" in verdict.detail and "boom" in verdict.detail


def test_empty_status_is_not_a_replica():
    verdict = gate.evaluate([], max_lag=30)
    assert not verdict.ok and "not a replica" in verdict.detail


class _FakeCursor:
    def __init__(self, conn):
        self.conn = conn

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, query, params=None):
        self.conn.queries.append(query)
        outcome = self.conn.answers[query]
        if isinstance(outcome, Exception):
            raise outcome
        self.rows = outcome

    def fetchall(self):
        return self.rows


class _FakeConn:
    def __init__(self, answers):
        self.answers = answers
        self.queries: list[str] = []

    def cursor(self, *_):
        return _FakeCursor(self)


def test_falls_back_to_show_slave_status_on_old_servers():
    old_row = {"Slave_IO_Running": "Yes", "Slave_SQL_Running": "Yes", "Seconds_Behind_Master": 0}
    conn = _FakeConn({
        "SHOW REPLICA STATUS": pymysql.err.ProgrammingError(1064, "You have an error in your SQL syntax"),
        "SHOW SLAVE STATUS": [old_row],
    })
    query, rows = gate.fetch_status(conn, None)
    assert query == "SHOW SLAVE STATUS"
    assert conn.queries == ["SHOW REPLICA STATUS", "SHOW SLAVE STATUS"]
    assert gate.evaluate(rows, 30).ok


def test_privilege_error_is_not_mistaken_for_old_syntax():
    conn = _FakeConn({
        "SHOW REPLICA STATUS": pymysql.err.OperationalError(1227, "Access denied; you need REPLICATION CLIENT"),
    })
    with pytest.raises(pymysql.err.OperationalError):
        gate.fetch_status(conn, None)
    assert conn.queries == ["SHOW REPLICA STATUS"]
