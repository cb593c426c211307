"""The Spark the tests run on: one local-mode session (``local[2]``) for the whole run.

A uniquely named helper module rather than a ``conftest.py``
(see tests/unit/chain/chain_testlib.py).
Nothing here skips: without pyspark or a Java runtime the tests fail and say what is missing
(``.ci/run`` installs Debian's ``openjdk-17-jre-headless``; the ``test`` extra, pyspark).
"""

from __future__ import annotations

import glob
import os
import shutil
import sys
from pathlib import Path

import pytest

# Java runtimes Spark 4 runs on, in order of preference, where Debian installs them.
JAVA_CANDIDATES = ("/usr/lib/jvm/java-17-openjdk-*", "/usr/lib/jvm/java-21-openjdk-*")


def find_java_home() -> str:
    """``JAVA_HOME`` if it holds a ``bin/java``, else Debian's OpenJDK 17 or 21, else the
    runtime of the ``java`` on PATH. Raises with what to install when there is none."""
    configured = os.environ.get("JAVA_HOME")
    if configured and os.access(os.path.join(configured, "bin", "java"), os.X_OK):
        return configured
    for pattern in JAVA_CANDIDATES:
        for home in sorted(glob.glob(pattern)):
            if os.access(os.path.join(home, "bin", "java"), os.X_OK):
                return home
    java = shutil.which("java")
    if java:
        return str(Path(os.path.realpath(java)).parents[1])
    raise RuntimeError("no Java runtime for Spark: install openjdk-17-jre-headless "
                       "(apt-get install openjdk-17-jre-headless) or set JAVA_HOME")


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    os.environ["JAVA_HOME"] = find_java_home()
    # Workers run this interpreter (the virtual environment with pyastore installed).
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    scratch = tmp_path_factory.mktemp("spark")
    session = (
        SparkSession.builder.master("local[2]")
        .appName("pyastore-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.local.dir", str(scratch))
        .config("spark.sql.warehouse.dir", str(scratch / "warehouse"))
        .config("spark.driver.memory", "1g")
        .config("spark.python.worker.reuse", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
