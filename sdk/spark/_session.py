"""The Spark session a Spark model loads and predicts in: the caller's, if one is active,
or a small local one started on demand (`local[1]`, 512 MiB, no UI, errors-only logging).

Spark runs on a JVM that PySpark starts; without Java it fails deep inside Py4J. Java
is looked for first (`JAVA_HOME`, then `java` on PATH) and its absence, or a Java older
than PySpark needs, is an error that says what to install.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from ledgerflow.events.errors import Unavailable

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

MIN_JAVA = 17
"""PySpark 4 runs on Java 17 or newer."""
APP_NAME = "ledgerflow-spark-model"
LOCAL_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.memory": "512m",
    "spark.sql.shuffle.partitions": "1",
    # a host name that resolves elsewhere (or not at all) breaks a local driver
    "spark.driver.host": "127.0.0.1",
}
LOG4J2 = Path(__file__).with_name("log4j2.properties")
"""Errors only: what Spark logs while it starts is noise to someone loading a model."""
INSTALL_HINT = (
    "install a Java runtime (Debian/Ubuntu: apt-get install openjdk-17-jre-headless; "
    "elsewhere: https://adoptium.net) and put it on PATH or set JAVA_HOME"
)


def active_session() -> SparkSession | None:
    """The caller's Spark session, if one is running (in this thread or another)."""
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is None:
        # a session started in another thread is not "active" in this one
        session = SparkSession._instantiatedSession
    return session


def session() -> SparkSession:
    """The active Spark session, or a local one started now (after checking for Java)."""
    found = active_session()
    if found is not None:
        return found
    check_java()
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master("local[1]").appName(APP_NAME)
    for key, value in LOCAL_CONF.items():
        builder = builder.config(key, value)
    if LOG4J2.is_file():
        builder = builder.config(
            "spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={LOG4J2.as_uri()}"
        )
    started = builder.getOrCreate()
    started.sparkContext.setLogLevel("ERROR")
    return started


def check_java() -> str:
    """The java executable PySpark will start, or Unavailable saying what to install."""
    home = os.environ.get("JAVA_HOME")
    if home:
        java = os.path.join(home, "bin", "java")
        if not os.access(java, os.X_OK):
            raise Unavailable(
                f"the spark flavor needs Java {MIN_JAVA}+, and JAVA_HOME={home!r} has no "
                f"bin/java: {INSTALL_HINT}"
            )
    else:
        found = shutil.which("java")
        if found is None:
            raise Unavailable(
                f"the spark flavor needs Java {MIN_JAVA}+ to run Spark, and there is no java "
                f"on PATH and no JAVA_HOME: {INSTALL_HINT}"
            )
        java = found
    major = java_major_version(java)
    if major is not None and major < MIN_JAVA:
        raise Unavailable(
            f"the spark flavor needs Java {MIN_JAVA}+, and {java} is Java {major}: {INSTALL_HINT}"
        )
    return java


def java_major_version(java: str) -> int | None:
    """The major version `java -version` reports (8 for "1.8.0_392", 17 for "17.0.15"),
    or None if it cannot be read."""
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if match is None:
        return None
    first = int(match.group(1))
    return int(match.group(2) or 0) if first == 1 else first
