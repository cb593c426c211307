"""A real PostgreSQL server for the tests: Debian's binaries, a temporary cluster, one per run.

``initdb`` runs as an unprivileged user (PostgreSQL refuses to run as root: as root, the
cluster belongs to ``nobody``), the server listens only on a Unix socket inside the temporary
directory (no TCP port to collide with), and it is stopped and removed at the end of the run.
Each test gets its own schema (:func:`fresh_log_url`), so the tests share one server.

Import it by its package path (``from postgres.pg_testlib import ...``, ``tests/`` is on the
path) from every folder, so that there is one module and one server. Nothing here skips:
without the binaries the fixture fails and says what to install (``.ci/run`` installs
Debian's ``postgresql``; the ``test`` extra, psycopg).
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

SERVER_USER = "nobody"
PORT = 5432
_schemas = itertools.count()


def find_bin_dir() -> Path:
    """The directory of ``initdb`` and ``pg_ctl``: Debian's newest /usr/lib/postgresql/N/bin,
    else the PATH's."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parents[1].name))
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl): install Debian's "
                       "postgresql package (apt-get install postgresql)")


@dataclass
class Server:
    bin_dir: Path
    directory: Path  # the data directory, the socket and the server log live here
    as_user: list[str]

    @property
    def socket_dir(self) -> Path:
        return self.directory

    def url(self, database: str = "postgres", schema: str | None = None) -> str:
        url = f"postgresql:///{database}?host={quote(str(self.socket_dir))}&port={PORT}" \
              "&user=postgres"
        if schema is not None:
            url += "&options=" + quote(f"-csearch_path={schema}")
        return url

    def pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([*self.as_user, str(self.bin_dir / "pg_ctl"), *args],
                              capture_output=True, text=True, check=check)

    def sql(self, statement: str, *params) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as db:
            cursor = db.execute(statement, params or None)
            return cursor.fetchall() if cursor.description else []


def _as_user() -> tuple[list[str], int | None, int | None]:
    if os.geteuid() != 0:
        return [], None, None
    entry = pwd.getpwnam(SERVER_USER)
    runuser = shutil.which("runuser") or "/sbin/runuser"
    return [runuser, "-u", SERVER_USER, "--"], entry.pw_uid, entry.pw_gid


def start_server() -> Server:
    bin_dir = find_bin_dir()
    as_user, uid, gid = _as_user()
    directory = Path(tempfile.mkdtemp(prefix="pyastore-pg-"))
    if uid is not None:
        os.chown(directory, uid, gid)
    server = Server(bin_dir, directory, as_user)
    data = directory / "data"
    subprocess.run([*as_user, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
                    "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions"],
                   capture_output=True, text=True, check=True)
    options = (f"-c listen_addresses='' -c unix_socket_directories={directory} -p {PORT} "
               "-c max_connections=60 -c fsync=on -c synchronous_commit=on")
    started = server.pg_ctl("-D", str(data), "-l", str(directory / "server.log"), "-w",
                            "-t", "60", "-o", options, "start", check=False)
    if started.returncode != 0:
        log = (directory / "server.log").read_text() if (directory / "server.log").exists() \
            else ""
        shutil.rmtree(directory, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {started.stdout}{started.stderr}{log}")
    return server


def stop_server(server: Server) -> None:
    server.pg_ctl("-D", str(server.directory / "data"), "-m", "fast", "-w", "stop", check=False)
    shutil.rmtree(server.directory, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server():
    server = start_server()
    yield server
    stop_server(server)


def fresh_log_url(server: Server) -> str:
    """The URL of a log location no test has used: a new, empty schema."""
    schema = f"log_{os.getpid()}_{next(_schemas)}"
    server.sql(f"CREATE SCHEMA {schema}")
    return server.url(schema=schema)
