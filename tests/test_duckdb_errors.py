"""errors.translate: the one place where the DuckDB adapter turns driver errors into ours."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from adapters.duckdb.errors import driver_errors, translate
from runner.errors import InvalidArgument, StoreCorrupt, StoreError, StoreLocked, StoreWriteFailed

PATH = Path("/data/store.duckdb")
LOCKED = 'IO Error: Could not set lock on file "/data/store.duckdb": Conflicting lock is held in python (PID 7)'
NOT_DUCKDB = 'IO Error: The file "/data/store.duckdb" exists, but it is not a valid DuckDB database file!'
CHECKSUM = "Corrupt database file: computed checksum 1 does not match stored checksum 2 in block at location 3"


@pytest.mark.parametrize("users_query", [False, True], ids=["store", "users-query"])
@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (duckdb.IOException(LOCKED), StoreLocked),
        (duckdb.IOException(NOT_DUCKDB), StoreCorrupt),
        (duckdb.Error(CHECKSUM), StoreCorrupt),
        (duckdb.IOException("IO Error: No space left on device"), StoreError),
        (duckdb.FatalException("FATAL Error: the database was invalidated"), StoreError),
    ],
)
def test_failures_of_the_store_are_store_errors_whoever_asked(exc, expected, users_query):
    translated = translate(exc, PATH, users_query=users_query)
    assert type(translated) is expected
    assert str(PATH) in str(translated)


def test_a_lock_is_recognised_by_its_exception_type_not_by_any_text():
    # the same words in an error of another type (here: a user's query naming such a table) are not a lock
    assert type(translate(duckdb.CatalogException(LOCKED), PATH)) is StoreError
    assert type(translate(duckdb.CatalogException(LOCKED), PATH, users_query=True)) is InvalidArgument


@pytest.mark.parametrize(
    "exc",
    [
        duckdb.ParserException('Parser Error: syntax error at or near "SELEC"'),
        duckdb.BinderException('Binder Error: Referenced column "nope" not found'),
        duckdb.CatalogException("Catalog Error: Table with name nope does not exist!"),
        duckdb.ConversionException("Conversion Error: Could not convert string 'x' to INT32"),
        duckdb.InvalidInputException("Invalid Input Error: bad"),
    ],
)
def test_a_users_query_that_fails_is_invalid_argument_and_a_store_statement_is_store_error(exc):
    translated = translate(exc, PATH, users_query=True)
    assert type(translated) is InvalidArgument and str(exc) in str(translated)
    assert type(translate(exc, PATH)) is StoreError


@pytest.mark.parametrize(
    "exc",
    [
        duckdb.PermissionException('Permission Error: Cannot access file "/etc/passwd"'),
        duckdb.TransactionException("TransactionContext Error: transaction is launched in read-only mode"),
    ],
)
def test_what_the_controls_deny_a_users_query_is_refused_as_not_read_only(exc):
    translated = translate(exc, PATH, users_query=True)
    assert type(translated) is InvalidArgument and "read-only" in str(translated)


def test_driver_errors_chains_the_driver_error():
    with pytest.raises(StoreLocked) as info, driver_errors(PATH):
        raise duckdb.IOException(LOCKED)
    assert isinstance(info.value.__cause__, duckdb.IOException)
    assert info.value.path == str(PATH) and info.value.detail == LOCKED


# ------------------------------------------------------- writes the disk refuses
# What DuckDB 2.0.1 raised on a full tmpfs, at the commit of an append, a fact or a new run.
DISK_FULL_COMMIT = (
    'TransactionContext Error: Failed to commit: Could not write file "/data/store.duckdb.wal": No space left on device'
)


@pytest.mark.parametrize(
    "exc",
    [
        duckdb.TransactionException(DISK_FULL_COMMIT),
        duckdb.IOException('IO Error: Could not write file "/data/store.duckdb.wal": No space left on device'),
        duckdb.IOException("IO Error: Cannot open file: Read-only file system"),
    ],
    ids=["commit", "io", "read-only"],
)
def test_a_write_the_driver_could_not_make_is_store_write_failed(exc):
    translated = translate(exc, PATH, writing=True)
    assert type(translated) is StoreWriteFailed
    assert translated.path == str(PATH) and translated.detail == str(exc)
    assert "Free disk space or fix the file's permissions" in str(translated)
    assert "runner resume RUN_ID" in str(translated) and "client.resume(run_id)" in str(translated)


def test_a_lock_or_damage_met_while_writing_keeps_its_own_error():
    assert type(translate(duckdb.IOException(LOCKED), PATH, writing=True)) is StoreLocked
    assert type(translate(duckdb.IOException(NOT_DUCKDB), PATH, writing=True)) is StoreCorrupt


def test_an_io_error_while_reading_is_no_write_failure():
    assert type(translate(duckdb.IOException("IO Error: No space left on device"), PATH)) is StoreError


@pytest.mark.parametrize(
    ("number", "name"),
    [(errno.ENOSPC, "ENOSPC"), (errno.EROFS, "EROFS"), (errno.EACCES, "EACCES"), (errno.EDQUOT, "EDQUOT")],
)
def test_an_os_error_that_refuses_a_write_is_store_write_failed(number, name):
    translated = translate(OSError(number, os.strerror(number)), PATH, writing=True)
    assert type(translated) is StoreWriteFailed
    assert translated.detail == f"{name}: {os.strerror(number)}"
    assert str(PATH) in str(translated)


def test_other_os_errors_stay_store_errors():
    assert type(translate(OSError(errno.EIO, "Input/output error"), PATH, writing=True)) is StoreError
    assert type(translate(OSError(errno.ENOSPC, "No space left on device"), PATH)) is StoreError  # not writing


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs RLIMIT_FSIZE and SIGXFSZ")
def test_a_commit_the_operating_system_refuses_stores_nothing_and_the_store_writes_again_later(tmp_path):
    """A real refusal, not a stand-in: in a child process (the limit would hold for every file
    this one writes), a file-size limit makes the commit's write fail (EFBIG) as a full disk does."""
    script = f"""
import resource, signal
from adapters import open_store
from runner.errors import StoreWriteFailed
from runner.events import FactProduced, RunSubmitted
from runner.store import NewRun

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing us
store = open_store("duckdb:///{tmp_path}/s.duckdb")
first = RunSubmitted(workflow="w", input=None, definition_hash="h")
store.create_run(NewRun(run_id="r", workflow="w", definition=b"x", definition_hash="h", events=(first,)))
lease = store.acquire_lease("r", "me", 60)
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, hard))
try:
    store.append("r", [FactProduced(node="a", value="v" * 400_000)], lease.token, after_seq=1)
    raise SystemExit("the append went through")
except StoreWriteFailed as exc:
    assert exc.path.endswith("s.duckdb") and "File too large" in exc.detail, exc
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
assert [s.seq for s in store.stream("r")] == [1]  # nothing of the refused append
receipt = store.append("r", [FactProduced(node="a", value="v" * 400_000)], lease.token, after_seq=1)
assert (receipt.first_seq, receipt.last_seq) == (2, 2)
print("ok")
"""
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=root, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
