"""`mysql-replication`: is this MySQL/MariaDB server a healthy, caught-up replica?

Runbook 6.1: before the upgrade, the application must be served by the standby
side, and the standby must be replicating (IO and SQL threads running, small
lag). This gate asks the server itself (`SHOW REPLICA STATUS`, falling back to
`SHOW SLAVE STATUS` on older servers) and fails closed: a server that is not a
replica, a NULL lag, an unreachable server or bad credentials all fail.

The password is read only from the environment variable KUBEHOP_MYSQL_PASSWORD
so that it never appears in argv (`ps`, Pulumi logs). The address must be
reachable from where the gate runs (a port-forward or a routable address from
config); there is no kubectl-exec mode.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kubehop.gates.common import GateError, Verdict, add_poll_arguments, poll

PASSWORD_ENV = "KUBEHOP_MYSQL_PASSWORD"

# Each field the verdict needs, under its MySQL >= 8.0.22 name first and its
# older (MySQL < 8.0.22, every MariaDB) name second.
_FIELDS: dict[str, tuple[str, ...]] = {
    "io": ("Replica_IO_Running", "Slave_IO_Running"),
    "sql": ("Replica_SQL_Running", "Slave_SQL_Running"),
    "lag": ("Seconds_Behind_Source", "Seconds_Behind_Master"),
    "io_error": ("Last_IO_Error",),
    "sql_error": ("Last_SQL_Error",),
    "channel": ("Channel_Name", "Connection_name"),
    "source": ("Source_Host", "Master_Host"),
}

# MySQL and MariaDB both answer an unknown statement with ER_PARSE_ERROR.
_ER_PARSE_ERROR = 1064


def _field(row: Mapping[str, Any], key: str) -> Any:
    for column in _FIELDS[key]:
        if column in row:
            return row[column]
    return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    return str(value)


def status_queries(channel: str | None) -> list[tuple[str, tuple]]:
    """The statements to try, newest syntax first."""
    if channel is None:
        return [("SHOW REPLICA STATUS", ()), ("SHOW SLAVE STATUS", ())]
    return [
        # MySQL >= 8.0.22 (and MariaDB >= 10.7 accepts it too)
        ("SHOW REPLICA STATUS FOR CHANNEL %s", (channel,)),
        # MySQL 5.7 - 8.0.21
        ("SHOW SLAVE STATUS FOR CHANNEL %s", (channel,)),
        # MariaDB multi-source: named connections
        ("SHOW REPLICA %s STATUS", (channel,)),
        ("SHOW SLAVE %s STATUS", (channel,)),
    ]


def fetch_status(conn, channel: str | None) -> tuple[str, list[dict]]:
    """Run the first status statement the server understands.

    Returns (statement, rows as dicts). Only a syntax error moves on to the
    next statement; any other error (privileges, unknown channel) is raised.
    """
    import pymysql

    last_exc: Exception | None = None
    for query, params in status_queries(channel):
        try:
            with conn.cursor(pymysql.cursors.DictCursor) as cur:
                cur.execute(query, params or None)
                rows = list(cur.fetchall())
            return query, rows
        except pymysql.err.ProgrammingError as exc:
            if exc.args and exc.args[0] == _ER_PARSE_ERROR:
                last_exc = exc
                continue
            raise
    raise GateError(f"server understood none of the replica status statements: {last_exc}")


def describe_row(row: Mapping[str, Any]) -> str:
    """One progress-line fragment: threads, lag and last errors."""
    lag = _field(row, "lag")
    parts = []
    channel = _text(_field(row, "channel"))
    if channel:
        parts.append(f"channel={channel}")
    source = _text(_field(row, "source"))
    if source:
        parts.append(f"source={source}")
    parts.append(f"io_thread={_text(_field(row, 'io')) or '?'}")
    parts.append(f"sql_thread={_text(_field(row, 'sql')) or '?'}")
    parts.append(f"lag={'NULL' if lag is None else f'{lag}s'}")
    io_error = _text(_field(row, "io_error"))
    sql_error = _text(_field(row, "sql_error"))
    if io_error:
        parts.append(f"last_io_error={io_error!r}")
    if sql_error:
        parts.append(f"last_sql_error={sql_error!r}")
    return " ".join(parts)


def row_problems(row: Mapping[str, Any], max_lag: float) -> list[str]:
    """Why this replication channel is not healthy ([] when it is)."""
    problems = []
    io = _text(_field(row, "io"))
    sql = _text(_field(row, "sql"))
    if io != "Yes":
        problems.append(f"IO thread not running ({io or 'unknown'})")
    if sql != "Yes":
        problems.append(f"SQL thread not running ({sql or 'unknown'})")
    lag = _field(row, "lag")
    if lag is None:
        problems.append("lag is NULL (replication not progressing)")
    else:
        try:
            lag_value = float(_text(lag))
        except ValueError:
            problems.append(f"lag unreadable ({lag!r})")
        else:
            if lag_value > max_lag:
                problems.append(f"lag {lag_value:g}s > max {max_lag:g}s")
    return problems


def evaluate(rows: Sequence[Mapping[str, Any]], max_lag: float, channel: str | None = None) -> Verdict:
    """Pass only when every returned channel runs both threads within max_lag."""
    if not rows:
        where = f" (channel {channel!r})" if channel else ""
        return Verdict(False, f"not a replica: no replication configured{where}")
    problems: list[str] = []
    details: list[str] = []
    for row in rows:
        details.append(describe_row(row))
        problems.extend(row_problems(row, max_lag))
    detail = "; ".join(details)
    if problems:
        return Verdict(False, f"{', '.join(problems)} [{detail}]")
    return Verdict(True, detail)


def _connect(args, password: str):
    import pymysql

    return pymysql.connect(
        host=args.host,
        port=args.port,
        user=args.user,
        password=password,
        connect_timeout=args.connect_timeout,
        read_timeout=args.connect_timeout,
        write_timeout=args.connect_timeout,
        autocommit=True,
        charset="utf8mb4",
    )


def make_check(args, password: str, connect: Callable | None = None) -> Callable[[], Verdict]:
    connect = connect or _connect

    def check() -> Verdict:
        try:
            conn = connect(args, password)
        except Exception as exc:  # noqa: BLE001 - fail closed on any connect error
            # PyMySQL's messages name user and host, never the password;
            # scrub anyway in case a driver ever echoes it.
            message = str(exc)
            if password:
                message = message.replace(password, "***")
            return Verdict(False, f"cannot connect to {args.host}:{args.port} as {args.user}: {message}")
        try:
            _, rows = fetch_status(conn, args.channel)
        finally:
            conn.close()
        return evaluate(rows, args.max_lag, args.channel)

    return check


def run(args) -> str:
    password = os.environ.get(PASSWORD_ENV)
    if password is None:
        raise GateError(f"{PASSWORD_ENV} is not set (the password is read from the environment only)")
    if args.max_lag < 0:
        raise GateError("--max-lag must be >= 0")
    verdict = poll(
        "mysql-replication",
        make_check(args, password),
        timeout=args.timeout,
        interval=args.interval,
        out=sys.stderr,  # looked up now, so callers that redirect stderr see progress
    )
    return f"{args.host}:{args.port} {verdict.detail}"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "mysql-replication",
        help="pass when a MySQL/MariaDB replica runs both threads with small lag",
        description=__doc__,
    )
    parser.add_argument("--host", required=True, help="replica address (port-forward or routable)")
    parser.add_argument("--port", type=int, default=3306)
    parser.add_argument("--user", required=True, help=f"password comes from ${PASSWORD_ENV}")
    parser.add_argument("--max-lag", type=float, default=30, metavar="SECONDS", help="largest acceptable lag")
    parser.add_argument("--channel", default=None, help="replication channel (MySQL) / connection name (MariaDB)")
    parser.add_argument("--connect-timeout", type=float, default=10, help="seconds per connect/query")
    add_poll_arguments(parser, timeout=300, interval=10)
    parser.set_defaults(func=run)
