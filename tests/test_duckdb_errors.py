"""errors.translate: the one place where the DuckDB adapter turns driver errors into ours."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from adapters.duckdb.errors import driver_errors, translate
from runner.errors import InvalidArgument, StoreCorrupt, StoreError, StoreLocked

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
