"""The ``runner`` command line (click + rich).

Every command takes ``--store``, ``--address`` and ``--namespace``. Exit
codes: 0 ok, 1 the run failed (or another runtime error), 2 usage or bad
input. Errors are one line; ``--debug`` shows the traceback.

Reads (``list``, ``show``, ``history``, ``sql``) go through the Store actor
when a Runner holds the store, and open the DuckDB file read-only when no
cluster is up: DuckDB lets one process open a file for writing.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

from adapters import DEFAULT_STORE_URL, open_store, store_path
from runner.errors import (
    ApprovalAlreadyDecided,
    DefinitionError,
    IllegalTransition,
    InvalidArgument,
    InvalidInput,
    ReplayRefused,
    RunClosed,
    RunnerError,
    RunNotFound,
    ScheduleNotFound,
    StoreError,
)
from runner.events import SKIPPED, ApprovalDecided, RunCancelled, RunFailed
from runner.metadata import check_metadata
from runner.store import RunFilter, RunRecord, RunStatus
from runner.workflow import Workflow

if TYPE_CHECKING:
    from runner.client import Client, RunHandle
    from runner.ray_calls import StoreCalls
    from runner.reader import StoreReader
    from runner.state import WorkflowState

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_BAD_INPUT = (
    ApprovalAlreadyDecided,
    InvalidArgument,
    InvalidInput,
    DefinitionError,
    RunNotFound,
    IllegalTransition,
    RunClosed,
    ReplayRefused,
    ScheduleNotFound,
)
_PIPE_WIDTH = 100_000


def _console(*, stderr: bool) -> Console:
    # User data (results, errors, run ids) is printed as it is: no markup, no emoji codes, no highlighting.
    console = Console(stderr=stderr, highlight=False, soft_wrap=True, markup=False, emoji=False)
    if not stderr and not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = _PIPE_WIDTH  # piped output: tables are never truncated nor wrapped
    return console


out = _console(stderr=False)
err = _console(stderr=True)


class Exit(Exception):
    """Stop with exit ``code`` and a one-line ``message``; ``detail`` (a traceback) is shown with --debug."""

    def __init__(self, code: int, message: str = "", detail: str = "") -> None:
        self.code = code
        self.message = message
        self.detail = detail
        super().__init__(message)


def common(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--store``, ``--address``, ``--namespace`` and ``--debug`` on every command; errors to exit codes."""

    @click.option(
        "--store", default=DEFAULT_STORE_URL, show_default=True, help="Store URL (duckdb:///path or memory://)."
    )
    @click.option(
        "--address",
        default=None,
        help="A cluster: http://HEAD:8265 runs the command there as a Ray job (from outside the cluster); "
        "HOST:6379 or auto joins it as a driver (on it). Default: this machine's Ray, if any.",
    )
    @click.option("--namespace", default="runner", show_default=True, help="The Runner's namespace.")
    @click.option("--debug", is_flag=True, help="Show tracebacks.")
    @functools.wraps(fn)
    def wrapper(*args: Any, debug: bool, **kwargs: Any) -> None:
        try:
            ctx = click.get_current_context()
            if _is_job_address(kwargs.get("address")) and ctx.command.name not in _LOCAL_COMMANDS:
                _through_job(ctx, kwargs["address"], kwargs["namespace"])
                return
            if ctx.meta.get(_JOB_ENV):
                raise InvalidArgument("--pip and --runtime-env apply with a job address (--address http://HEAD:8265)")
            fn(*args, **kwargs)
        except Exit as exc:
            if debug and exc.detail:
                err.print(exc.detail.rstrip())
            if exc.message:
                err.print(_squash(exc.message))
            sys.exit(exc.code)
        except click.exceptions.ClickException:
            raise
        except Exception as exc:
            if debug:
                err.print("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip())
            code = EXIT_USAGE if isinstance(exc, _BAD_INPUT) else EXIT_FAILED
            err.print(f"error: {_one_line(exc)}")
            sys.exit(code)

    return wrapper


def _squash(text: str) -> str:
    return " ".join(text.split())


def _one_line(exc: BaseException) -> str:
    text = _squash(str(exc))
    return text if isinstance(exc, RunnerError) else f"{type(exc).__name__}: {text}"


# ---------------------------------------------- Ray Jobs (runner.jobs)
_LOCAL_COMMANDS = frozenset({"graph"})  # commands that never touch a cluster run here
_NOT_FORWARDED = frozenset({"address", "store", "namespace", "debug", "pip_packages", "runtime_env_json"})
_JOB_ENV = "runner.job_env"  # ctx.meta key: the runtime_env fields given with --pip / --runtime-env


def _is_job_address(address: str | None) -> bool:
    from runner.jobs import is_job_address

    return is_job_address(address)


def job_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--pip`` and ``--runtime-env``: what a job sent to ``http://`` address carries besides the code."""

    @click.option("--pip", "pip_packages", multiple=True, help="With a job address: a pip package the job needs.")
    @click.option(
        "--runtime-env", "runtime_env_json", default=None, help="With a job address: more runtime_env fields (JSON)."
    )
    @functools.wraps(fn)
    def wrapper(*args: Any, pip_packages: tuple[str, ...], runtime_env_json: str | None, **kwargs: Any) -> None:
        try:
            env = parse_json(runtime_env_json, "--runtime-env") or {}
        except InvalidArgument as exc:
            raise click.BadParameter(str(exc), param_hint="--runtime-env") from None
        if not isinstance(env, dict):
            raise click.BadParameter("must be a JSON object", param_hint="--runtime-env")
        if pip_packages:
            env["pip"] = [*env.get("pip", []), *pip_packages]
        click.get_current_context().meta[_JOB_ENV] = env
        fn(*args, **kwargs)

    return wrapper


def _through_job(ctx: click.Context, address: str, namespace: str) -> None:
    """Run this command on the cluster at ``address`` as a Ray job; print its output, exit with its code."""
    from click.core import ParameterSource

    from runner.jobs import JobCommand, check_store_for_job, run_as_job, target_runtime_env

    args: list[str] = [ctx.command.name or ""]
    runtime_env: dict[str, Any] = {}
    for param in ctx.command.params:
        name = param.name or ""
        value = ctx.params.get(name)
        if name in _NOT_FORWARDED or ctx.get_parameter_source(name) is ParameterSource.DEFAULT:
            continue
        if name == "target":
            value, runtime_env = target_runtime_env(str(value))
        if isinstance(param, click.Argument):
            args.append(str(value))
        elif isinstance(param, click.Option) and param.is_flag:
            args += [param.opts[0]] if value else []
        elif isinstance(param, click.Option) and param.multiple:
            for item in value or ():
                args += [param.opts[0], str(item)]
        elif value is not None:
            args += [param.opts[0], str(value)]
    store: str | None = None
    if ctx.get_parameter_source("store") is not ParameterSource.DEFAULT:
        store = str(ctx.params["store"])
        check_store_for_job(store)
    runtime_env.update(ctx.meta.get(_JOB_ENV, {}))
    command = JobCommand(args=tuple(args), namespace=namespace, store=store, runtime_env=runtime_env)
    outcome = run_as_job(address, command)
    sys.stdout.write(outcome.output)
    sys.stdout.flush()
    if outcome.exit_code:
        raise Exit(outcome.exit_code)


# --------------------------------------------------------------- access
def _connect(store: str, address: str | None, namespace: str) -> Client:
    from runner.client import connect

    return connect(address, store=store, namespace=namespace)


def _reader(store: str, address: str | None, namespace: str) -> StoreReader:
    """Reads through the Store actor of a running Runner that holds ``store``, else from the file read-only."""
    from runner.reader import ActorStoreReader, FileStoreReader

    calls = _store_calls(store, address, namespace)
    if calls is not None:
        return ActorStoreReader(calls)
    if store_path(store) is None:
        raise InvalidArgument("a memory:// store lives only inside a running Runner; none is running")
    return FileStoreReader(open_store(store, read_only=True))


def _store_calls(store: str, address: str | None, namespace: str) -> StoreCalls | None:
    """Calls to the Store actor of this namespace's Runner, if one is running and holds ``store``."""
    import ray

    from runner.client import absolute_store_url
    from runner.ray_calls import RunnerCalls, StoreCalls, find_runner, runner_store
    from runner.runner import RUNNER_NAME

    wanted = absolute_store_url(store)  # a bad URL is reported before connecting
    if not ray.is_initialized():
        try:
            # "auto" (the default) also honours RAY_ADDRESS; no cluster at all: read the file.
            ray.init(address=address or "auto", namespace=namespace, logging_level=logging.ERROR, log_to_driver=False)
        except ConnectionError:
            return None
    try:
        runner_actor = ray.get_actor(RUNNER_NAME, namespace=namespace)
    except ValueError:
        return None
    runner = RunnerCalls(runner_actor, lambda: find_runner(RUNNER_NAME, namespace))
    if runner.call(lambda r: r.store_url_in_use.remote()) != wanted:
        return None  # that Runner holds another store; the one asked for is not locked by it
    return StoreCalls(runner_store(runner), find=lambda: runner_store(runner))


# -------------------------------------------------------------- helpers
def load_target(target: str) -> Workflow:
    """``package.module:name`` or ``path/to/file.py:name`` -> the Workflow object."""
    module_name, sep, attr = target.rpartition(":")
    if not sep or not module_name or not attr:
        raise InvalidArgument(f"expected MODULE:WORKFLOW (e.g. examples/quickstart.py:orders), got {target!r}")
    if module_name.endswith(".py") or "/" in module_name or os.sep in module_name:
        module = _load_file(Path(module_name))
    else:
        if str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # not found, or it raised while importing
            detail = str(exc) if isinstance(exc, ImportError) else f"{type(exc).__name__}: {exc}"
            raise InvalidArgument(f"cannot import module {module_name!r}: {detail}") from exc
    workflow = getattr(module, attr, None)
    if not isinstance(workflow, Workflow):
        found = sorted(name for name, value in vars(module).items() if isinstance(value, Workflow))
        listed = f"workflows there: {', '.join(found)}" if found else "it defines no runner.Workflow"
        if not hasattr(module, attr):
            raise InvalidArgument(f"{module_name!r} has no {attr!r}; {listed}")
        raise InvalidArgument(f"{target!r} is a {type(workflow).__name__}, not a runner.Workflow; {listed}")
    return workflow


def _load_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise InvalidArgument(f"no file {str(path)!r}")
    name = path.stem
    loaded = sys.modules.get(name)
    if loaded is not None and getattr(loaded, "__file__", None) != str(path):
        # A module of that name is imported already (the standard library's, a dependency's, ours):
        # replacing it in sys.modules would break whoever uses it.
        name = f"_runner_target_{name}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InvalidArgument(f"cannot import {str(path)!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # the workflow's code is pickled by value, found through sys.modules
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise InvalidArgument(f"cannot load {str(path)!r}: {type(exc).__name__}: {_squash(str(exc))}") from exc
    return module


def parse_json(text: str | None, what: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"{what} is not valid JSON ({exc.msg} at column {exc.colno}): {text!r}") from None


SUBMIT_META_HELP = "Keep KEY=VALUE (a string) with the run; KEY:=JSON keeps any JSON value (repeatable)."


def parse_meta(items: tuple[str, ...]) -> dict[str, Any]:
    """``--meta`` options as a metadata filter: ``key=text`` compares a string, ``key:=json`` a JSON scalar."""
    wanted: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key or key == ":":
            raise InvalidArgument(f"--meta takes KEY=VALUE or KEY:=JSON, got {item!r}")
        if key.endswith(":"):
            wanted[key[:-1]] = parse_json(text, f"--meta {key[:-1]}")
        else:
            wanted[key] = text
    return wanted


def _when(t: float | None) -> str:
    return "" if t is None else datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def _seconds(t: float | None) -> str:
    return "" if t is None else f"{t:.3f}s"


def _print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, keep: Sequence[str] = ()) -> None:
    """A table on stdout; the ``keep`` columns (ids) are never truncated nor wrapped."""
    table = Table(*headers)
    for index, column in enumerate(table.columns):
        if headers[index] in keep:
            column.no_wrap = True
            column.min_width = max([len(headers[index])] + [len(row[index]) for row in rows])
    for row in rows:
        table.add_row(*row)
    out.print(table)


def _value(value: Any) -> str:
    if value is SKIPPED:
        return "SKIPPED"
    try:
        return json.dumps(value, default=repr)
    except (TypeError, ValueError):
        return repr(value)


# ------------------------------------------------------------- commands
@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ray-runner")
def main() -> None:
    """Durable workflows on Ray: submit, watch, signal and inspect runs."""


@main.command()
@click.argument("target")
@click.option("--input", "input_json", default=None, help="The run's input as JSON.")
@click.option("--run-id", default=None, help="Choose the run id (submitting it again returns the same run).")
@click.option("--idempotency-key", default=None, help="Submitting with the same key returns the same run.")
@click.option("--timeout", type=float, default=None, help="Stop watching after this many seconds (the run goes on).")
@click.option("--meta", multiple=True, help=SUBMIT_META_HELP)
@job_options
@common
def run(
    target: str,
    input_json: str | None,
    run_id: str | None,
    idempotency_key: str | None,
    timeout: float | None,
    meta: tuple[str, ...],
    store: str,
    address: str | None,
    namespace: str,
) -> None:
    """Submit TARGET (MODULE:WORKFLOW) and show its progress until it ends."""
    _, handle = _submit(target, input_json, run_id, idempotency_key, store, address, namespace, meta)
    err.print(f"run {handle.run_id} submitted")
    _watch(handle, timeout)
    try:
        result = handle.result(timeout=5)
    except Exception as exc:
        raise _run_failed(handle, exc) from exc
    out.print(_value(result))


def _run_failed(handle: RunHandle, exc: BaseException) -> Exit:
    """Exit 1 naming the failed step and its error; --debug shows the step's own traceback."""
    from runner.reader import RunFailure

    failure = RunFailure.of(*handle.client.reader.outcome(handle.run_id))
    event = failure.event
    if isinstance(event, RunFailed):
        message = f"run {handle.run_id} failed{failure.where}: {event.error}"
        return Exit(EXIT_FAILED, message, detail=event.error.traceback)
    if isinstance(event, RunCancelled):
        return Exit(EXIT_FAILED, f"run {handle.run_id} was cancelled ({failure.cancel_reason})")
    detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return Exit(EXIT_FAILED, f"run {handle.run_id} failed: {_one_line(exc)}", detail=detail)


def _submit(
    target: str,
    input_json: str | None,
    run_id: str | None,
    idempotency_key: str | None,
    store: str,
    address: str | None,
    namespace: str,
    meta: tuple[str, ...] = (),
) -> tuple[Workflow, RunHandle]:
    """Load TARGET, parse its input and metadata (checked before connecting) and submit: (workflow, handle)."""
    workflow = load_target(target)
    value = parse_json(input_json, "--input")
    metadata = check_metadata(parse_meta(meta), "--meta")
    client = _connect(store, address, namespace)
    return workflow, client.submit(workflow, value, run_id=run_id, idempotency_key=idempotency_key, metadata=metadata)


def _watch(handle: RunHandle, timeout: float | None) -> None:
    """``runner run``'s progress (the display of ``runner watch``) until the run ends; Exit if it
    is still going after ``timeout`` seconds."""
    from runner.cli_watch import watch as show_progress

    def pause() -> None:
        handle.client.wait_records([handle.run_id], 0.3)  # returns early when the run ends

    state = show_progress(
        handle.client.reader, handle.run_id, err, timeout=timeout, pause=pause, transient=not err.is_terminal
    )
    if not state.is_finished:
        raise Exit(
            EXIT_FAILED, f"run {handle.run_id} still {state.status.value} after {timeout:g}s; it goes on running"
        )


@main.command()
@click.argument("target")
@click.option("--input", "input_json", default=None, help="The run's input as JSON.")
@click.option("--run-id", default=None)
@click.option("--idempotency-key", default=None)
@click.option("--meta", multiple=True, help=SUBMIT_META_HELP)
@job_options
@common
def submit(
    target: str,
    input_json: str | None,
    run_id: str | None,
    idempotency_key: str | None,
    meta: tuple[str, ...],
    store: str,
    address: str | None,
    namespace: str,
) -> None:
    """Submit TARGET (MODULE:WORKFLOW) and print the run id."""
    _, handle = _submit(target, input_json, run_id, idempotency_key, store, address, namespace, meta)
    out.print(handle.run_id)


@main.command(name="list")
@click.option("--workflow", default=None, help="Only runs of this workflow.")
@click.option("--status", multiple=True, help="Only runs in this status (repeatable).")
@click.option("--since", default=None, type=float, help="Only runs created after this unix time.")
@click.option("--limit", default=50, show_default=True, type=int)
@click.option(
    "--meta",
    multiple=True,
    help="Only runs whose submit metadata has KEY=VALUE (a string); KEY:=JSON compares a number, "
    "true, false or null (repeatable: all must match).",
)
@click.option("--queue", default=None, help="Only runs submitted to this named queue.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per run.")
@common
def list_(
    workflow: str | None,
    status: tuple[str, ...],
    since: float | None,
    limit: int,
    meta: tuple[str, ...],
    store: str,
    address: str | None,
    namespace: str,
    queue: str | None = None,
    as_json: bool = False,
) -> None:
    """List runs, newest first."""
    run_filter = RunFilter(
        workflow=workflow, status=status, created_after=since, limit=limit, metadata=parse_meta(meta), queue=queue
    )  # checked first
    reader = _reader(store, address, namespace)
    records = reader.list_runs(run_filter)
    if as_json:
        for record in records:
            out.print(json.dumps(_record_json(record)))
        return
    rows = [
        (r.run_id, r.workflow, r.status.value, _when(r.created_at), _when(r.updated_at), str(r.last_seq), r.error or "")
        for r in records
    ]
    _print_table(("run id", "workflow", "status", "created", "updated", "events", "error"), rows, keep=("run id",))
    if not records:
        err.print("no runs match")


@main.command()
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="The run and its steps as one JSON object.")
@common
def show(run_id: str, store: str, address: str | None, namespace: str, as_json: bool = False) -> None:
    """A run's status and its steps: attempts and timings."""
    from runner import serialization
    from runner.state import WorkflowState

    reader = _reader(store, address, namespace)
    record = reader.get_run(run_id)  # RunNotFound for an unknown id, not an empty history
    workflow = serialization.loads(record.definition)
    state = WorkflowState.from_events(workflow, reader.history(run_id))
    if as_json:
        out.print(json.dumps(_show_json(reader, record, state), default=repr))
        return
    out.print(f"run       {record.run_id}")
    out.print(f"workflow  {record.workflow}")
    out.print(f"status    {record.status.value}")
    out.print(f"created   {_when(record.created_at)}")
    if record.metadata:
        out.print(f"metadata  {json.dumps(record.metadata, sort_keys=True)}")
    if record.parent_run_id:
        out.print(f"parent    {record.parent_run_id}")
    for component, child in state.children().items():
        out.print(f"child     {child} (component {component})")
    if record.error:
        out.print(f"error     {record.error}")
    if record.status is RunStatus.PAUSED and state.pause_reason:
        out.print(f"paused    {state.pause_reason}")
    if state.is_finished and state.status == RunStatus.COMPLETED:
        out.print(f"result    {_value(reader.load_value(state.result))}")
    if state.successor_run_id is not None:
        out.print(f"continued {state.successor_run_id}")
    rows = [
        (
            step.name,
            step.kind,
            step.status + (" (reused)" if step.reused else ""),
            str(step.attempts),
            _when(step.started_at),
            _seconds(step.duration),
            "" if step.items is None else f"{step.items_done}/{step.items}",
            "" if step.error is None else str(step.error),
        )
        for step in state.steps()
    ]
    _print_table(("step", "kind", "status", "attempts", "started", "duration", "items", "error"), rows, keep=("step",))


def _record_json(record: RunRecord) -> dict[str, Any]:
    """A run's record for scripts (``list --json``, ``show --json``): no definition, no lease."""
    return {
        "run_id": record.run_id,
        "workflow": record.workflow,
        "status": record.status.value,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "events": record.last_seq,
        "parent_run_id": record.parent_run_id,
        "error": record.error,
    }


def _show_json(reader: StoreReader, record: RunRecord, state: WorkflowState) -> dict[str, Any]:
    steps = [
        {
            "name": step.name,
            "kind": step.kind,
            "status": str(step.status),
            "attempts": step.attempts,
            "started_at": step.started_at,
            "finished_at": step.finished_at,
            "duration": step.duration,
            "items": step.items,
            "items_done": step.items_done,
            "reused": step.reused,
            "error": None if step.error is None else {"type": step.error.type, "message": step.error.message},
        }
        for step in state.steps()
    ]
    shown: dict[str, Any] = {**_record_json(record), "steps": steps, "children": state.children()}
    if state.successor_run_id is not None:
        shown["continued_as"] = state.successor_run_id
    if state.is_finished and state.status == RunStatus.COMPLETED:
        result = reader.load_value(state.result)
        shown["result"] = None if result is SKIPPED else result
    return shown


@main.command()
@click.argument("run_id")
@click.option("--timeout", type=float, default=None, help="Stop watching after this many seconds (the run goes on).")
@common
def watch(run_id: str, timeout: float | None, store: str, address: str | None, namespace: str) -> None:
    """Show RUN_ID's progress live (steps, map items, attempts) until it ends; exit 1 if it failed."""
    from runner.cli_watch import watch as show_progress
    from runner.reader import FileStoreReader

    reader = _reader(store, address, namespace)
    follow = not isinstance(reader, FileStoreReader)  # a file no cluster holds: nothing moves, draw it once
    state = show_progress(reader, run_id, err, timeout=timeout, follow=follow)
    if state.status in (RunStatus.FAILED, RunStatus.CANCELLED):
        raise Exit(EXIT_FAILED, f"run {run_id} {state.status.value}")
    out.print(f"{run_id}: {state.status.value}")


@main.command()
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event.")
@common
def history(run_id: str, as_json: bool, store: str, address: str | None, namespace: str) -> None:
    """A run's event log, in order."""
    from runner import serialization

    reader = _reader(store, address, namespace)
    reader.get_run(run_id)  # RunNotFound for an unknown id, not an empty history
    events = reader.history(run_id)
    if as_json:
        for stored in events:
            kind, payload = serialization.encode_event(stored.event)
            out.print(json.dumps({"seq": stored.seq, "kind": kind, **json.loads(payload)}))
        return
    rows = []
    for stored in events:
        event = stored.event
        node = getattr(event, "node", "") or ""
        item = getattr(event, "item", None)
        if item is not None:
            node = f"{node}[{item}]"
        rows.append((str(stored.seq), _when(event.at), type(event).__name__, node, _detail(event)))
    _print_table(("seq", "at", "kind", "node", "detail"), rows, keep=("kind", "node"))


def _detail(event: Any) -> str:
    if isinstance(event, ApprovalDecided):
        why = f": {event.comment}" if event.comment else ""
        return f"{'approved' if event.approved else 'rejected'} by {event.by}{why}"
    for name in ("error", "reason", "name", "count", "due_at", "attempt", "child_run_id"):
        value = getattr(event, name, None)
        if value is not None and value != "":
            return f"{name}={value}"
    return ""


@main.command()
@click.argument("run_id")
@click.argument("name")
@click.argument("payload", required=False)
@click.option("--key", default=None, help="Store the signal once per run and KEY: sent again, it is a duplicate.")
@common
def signal(
    run_id: str, name: str, payload: str | None, key: str | None, store: str, address: str | None, namespace: str
) -> None:
    """Send signal NAME (with a JSON PAYLOAD) to a run; stored before this returns."""
    value = parse_json(payload, "PAYLOAD")
    client = _connect(store, address, namespace)
    signal_id = client.signal(run_id, name, value, key=key)
    if signal_id.duplicate:
        out.print(f"signal {name} with key {key!r} was stored before as #{signal_id} for {run_id}: not stored again")
    else:
        out.print(f"signal {name} #{signal_id} stored for {run_id}")


@main.command()
@click.argument("run_id")
@click.argument("approval")
@click.option("--by", required=True, help="Who approves (recorded in the run's history).")
@click.option("--comment", default="", help="Why (recorded in the run's history).")
@common
def approve(run_id: str, approval: str, by: str, comment: str, store: str, address: str | None, namespace: str) -> None:
    """Approve APPROVAL of a run; stored before this returns, the first decision stands."""
    _decide(run_id, approval, True, by, comment, _connect(store, address, namespace))


@main.command()
@click.argument("run_id")
@click.argument("approval")
@click.option("--by", required=True, help="Who rejects (recorded in the run's history).")
@click.option("--comment", default="", help="Why (recorded in the run's history).")
@common
def reject(run_id: str, approval: str, by: str, comment: str, store: str, address: str | None, namespace: str) -> None:
    """Reject APPROVAL of a run; its workflow says what a rejection does (fail, skip or branch)."""
    _decide(run_id, approval, False, by, comment, _connect(store, address, namespace))


def _decide(run_id: str, approval: str, approved: bool, by: str, comment: str, client: Client) -> None:
    decide = client.approve if approved else client.reject
    decision = decide(run_id, approval, by=by, comment=comment)
    out.print(f"approval {approval} {decision.verb} by {decision.by} for {run_id}")


@main.command()
@click.argument("run_id")
@common
def cancel(run_id: str, store: str, address: str | None, namespace: str) -> None:
    """Cancel a run: running steps are cancelled, the run ends cancelled."""
    record = _connect(store, address, namespace).cancel(run_id)
    out.print(f"{run_id}: {record.status.value}")


@main.command()
@click.argument("run_id")
@common
def pause(run_id: str, store: str, address: str | None, namespace: str) -> None:
    """Pause a run: no new step starts, its worker is released."""
    client = _connect(store, address, namespace)
    err.print(f"pausing {run_id}: its running steps finish first")
    record = client.pause(run_id)
    out.print(f"{run_id}: {record.status.value}")


@main.command()
@click.argument("run_id")
@click.option("--reason", default="", help="Why a failed or cancelled run may go on now (kept in its history).")
@common
def resume(run_id: str, reason: str, store: str, address: str | None, namespace: str) -> None:
    """Resume a paused run, or a failed or cancelled one in place (from where it ended)."""
    _connect(store, address, namespace).resume(run_id, reason=reason)
    out.print(f"{run_id}: resumed")  # the answer is the record as it was (paused); the run is queued again


@main.command()
@click.argument("run_id")
@click.option("--allow-irreversible", is_flag=True, help="Replay even though irreversible steps ran.")
@common
def replay(run_id: str, allow_irreversible: bool, store: str, address: str | None, namespace: str) -> None:
    """Start a new run with the same definition and input; prints its id."""
    client = _connect(store, address, namespace)
    handle = client.replay(run_id, allow_irreversible=allow_irreversible)
    out.print(handle.run_id)


@main.command()
@click.argument("run_id")
@click.option("--from-step", required=True, help="Re-run from this step; everything upstream is reused.")
@click.option("--allow-irreversible", is_flag=True, help="Fork even though irreversible steps would run again.")
@common
def fork(
    run_id: str, from_step: str, allow_irreversible: bool, store: str, address: str | None, namespace: str
) -> None:
    """Start a new run that reuses RUN_ID's results upstream of --from-step; prints its id."""
    client = _connect(store, address, namespace)
    handle = client.fork(run_id, from_step=from_step, allow_irreversible=allow_irreversible)
    out.print(handle.run_id)


@main.command()
@click.argument("target")
@common
def graph(target: str, store: str, address: str | None, namespace: str) -> None:
    """Print TARGET's graph (MODULE:WORKFLOW) as Mermaid text."""
    from runner.graph import to_mermaid

    out.print(to_mermaid(load_target(target)), end="")


@main.command()
@click.argument("query")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per row.")
@common
def sql(query: str, as_json: bool, store: str, address: str | None, namespace: str) -> None:
    """Run a read-only SQL QUERY over the store (tables: docs/sql.md)."""
    reader = _reader(store, address, namespace)
    try:
        columns, rows = reader.sql(query)
    except StoreError as exc:
        raise Exit(EXIT_USAGE, f"error: {_one_line(exc)}") from exc
    if as_json:
        for row in rows:
            out.print(json.dumps(dict(zip(columns, row, strict=False)), default=str))
        return
    _print_table(columns, [["" if v is None else str(v) for v in row] for row in rows])


@main.command()
@click.option("--max-workers", type=int, default=None)
@common
def start(max_workers: int | None, store: str, address: str | None, namespace: str) -> None:
    """Start Ray on this machine (if needed) and the Runner, which outlives this command."""
    import subprocess

    import ray

    if address is None:
        try:
            ray.init(address="auto", namespace=namespace, logging_level=logging.ERROR)
            ray.shutdown()
        except ConnectionError:
            # the `ray` next to this interpreter: a virtualenv's bin/ need not be on PATH
            beside = Path(sys.executable).with_name("ray")
            command = [str(beside) if beside.exists() else "ray", "start", "--head", "--disable-usage-stats"]
            try:
                proc = subprocess.run(command, capture_output=True, text=True)
            except OSError as exc:
                raise Exit(EXIT_FAILED, f"error: cannot run `ray start`: {exc}") from None
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
                raise Exit(EXIT_FAILED, f"error: ray start failed: {last}") from None
        address = "auto"
    from runner.client import connect

    client = connect(address, store=store, namespace=namespace, max_workers=max_workers)
    report = client.recovery_report()
    out.print(f"runner ready (namespace {namespace}, store {client.store_url}); resumed {len(report.resumed)} run(s)")


# ------------------------------------------------------------ schedules
@main.command(name="schedule")
@click.argument("target")
@click.option("--cron", "cron_text", required=True, help='Cron expression, UTC (e.g. "*/5 * * * *"; seconds last).')
@click.option("--input", "input_json", default=None, help="Each run's input as JSON.")
@click.option("--name", default=None, help="The schedule's name (default: the workflow's); the same name replaces it.")
@common
def schedule_(
    target: str,
    cron_text: str,
    input_json: str | None,
    name: str | None,
    store: str,
    address: str | None,
    namespace: str,
) -> None:
    """Start a run of TARGET (MODULE:WORKFLOW) at every tick of --cron."""
    from runner.cron import check_cron

    workflow = load_target(target)
    value = parse_json(input_json, "--input")
    check_cron(workflow.name if name is None else name, cron_text)  # before connecting: a typo costs nothing
    saved = _connect(store, address, namespace).schedule(workflow, cron=cron_text, input=value, name=name)
    out.print(f"{saved.name}: {saved.workflow} at {saved.cron!r} (UTC)")


@main.command()
@common
def schedules(store: str, address: str | None, namespace: str) -> None:
    """List cron schedules."""
    found = _connect(store, address, namespace).list_schedules()
    rows = [(s.name, s.workflow, s.cron, _when(s.created_at), _when(s.last_tick)) for s in found]
    _print_table(("name", "workflow", "cron (UTC)", "created", "last tick"), rows, keep=("name",))
    if not found:
        err.print("no schedules")


@main.command()
@click.argument("name")
@common
def unschedule(name: str, store: str, address: str | None, namespace: str) -> None:
    """Remove schedule NAME (the runs it started stay)."""
    _connect(store, address, namespace).unschedule(name)
    out.print(f"{name}: removed")


@main.command()
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to serve on; beyond loopback needs --token."
)
@click.option("--port", default=None, type=int, help="Port to serve on.  [default: 8365; with --serve: 8000]")
@click.option(
    "--token", envvar="RUNNER_UI_TOKEN", default=None, help="Required to open the view (env RUNNER_UI_TOKEN)."
)
@click.option(
    "--allow-actions", is_flag=True, help="Show the buttons: signal, approve, cancel, pause, resume, replay, fork."
)
@click.option(
    "--serve",
    "on_serve",
    is_flag=True,
    help="Deploy the view on the cluster as a Ray Serve application and return; needs ray-runner[serve] "
    "on every node. --host/--port then set Serve's HTTP proxy if this starts Serve.",
)
@click.option("--route-prefix", default="/runner", show_default=True, help="With --serve: the view's path on Serve.")
@click.option("--serve-name", default="runner-ui", show_default=True, help="With --serve: the Serve application.")
@click.option("--undeploy", is_flag=True, help="Remove the view deployed with --serve (by --serve-name).")
@common
def ui(
    host: str,
    port: int | None,
    token: str | None,
    allow_actions: bool,
    store: str,
    address: str | None,
    namespace: str,
    on_serve: bool = False,
    route_prefix: str = "/runner",
    serve_name: str = "runner-ui",
    undeploy: bool = False,
) -> None:
    """Serve the web view of the store's runs (read-only unless --allow-actions); needs ray-runner[ui].
    With --serve, deploy it on the cluster as a Ray Serve application instead (ray-runner[serve]),
    over the store of the Runner running in the namespace."""
    if on_serve or undeploy:
        _serve_ui(host, port, token, allow_actions, store, address, namespace, route_prefix, serve_name, undeploy)
        return
    port = 8365 if port is None else port
    try:
        from runner.ui import access, server
        from runner.ui.app import UiApp
    except ImportError as exc:
        raise Exit(EXIT_USAGE, f"error: the web view needs its extra: pip install 'ray-runner[ui]' ({exc})") from None
    access.check_bind(host, token)  # before connecting to anything
    if allow_actions:
        client = _connect(store, address, namespace)
        app = UiApp(client.reader, client=client, allow_actions=True, token=token)
    else:
        app = UiApp(_reader(store, address, namespace), token=token)
    shown = f"[{host}]" if ":" in host else host
    err.print(f"web view of {store} on http://{shown}:{port} ({'actions enabled' if allow_actions else 'read-only'})")
    server.serve_forever(app, host=host, port=port)


def _serve_ui(
    host: str,
    port: int | None,
    token: str | None,
    allow_actions: bool,
    store: str,
    address: str | None,
    namespace: str,
    route_prefix: str,
    name: str,
    undeploy: bool,
) -> None:
    """``runner ui --serve`` / ``--undeploy``: deploy (or remove) the view as a Ray Serve application."""
    try:
        from runner.ui import access, serve_app
    except ImportError as exc:
        raise Exit(
            EXIT_USAGE, f"error: the web view on Ray Serve needs its extra: pip install 'ray-runner[serve]' ({exc})"
        ) from None
    if not undeploy:
        access.check_bind(host, token)  # before connecting to anything
    import ray

    if not ray.is_initialized():
        try:  # a running cluster only: a Ray started by this command would end with it
            ray.init(address=address or "auto", namespace=namespace, logging_level=logging.ERROR)
        except ConnectionError:
            raise Exit(
                EXIT_FAILED,
                "error: --serve and --undeploy work on a running Ray cluster and none was found: "
                "start one (`ray start --head`) or give its address (--address HEAD:6379)",
            ) from None
    if undeploy:
        removed = serve_app.undeploy(name)
        out.print(f"{name}: removed" if removed else f"{name}: not deployed")
        return
    client = serve_app.attach(namespace)  # the Runner running there, whatever its store
    _check_same_store(store, client.store_url)
    served = serve_app.deploy(
        client,
        route_prefix=route_prefix,
        name=name,
        host=host,
        port=serve_app.DEFAULT_PORT if port is None else port,
        allow_actions=allow_actions,
        token=token,
    )
    mode = "actions enabled" if allow_actions else "read-only"
    err.print(
        f"web view of {client.store_url} deployed on Ray Serve as {served.name!r} ({mode}); "
        "`runner ui --undeploy` removes it"
    )
    out.print(served.url)


def _check_same_store(store: str, in_use: str) -> None:
    """A ``--store`` given on the command line must be the one the namespace's Runner holds."""
    from click.core import ParameterSource

    from runner.client import absolute_store_url

    if click.get_current_context().get_parameter_source("store") is ParameterSource.DEFAULT:
        return
    if absolute_store_url(store) != in_use:
        raise InvalidArgument(
            f"the Runner of this namespace holds {in_use!r}, not {store!r}: leave out --store, or give the namespace "
            "whose Runner holds it (--namespace)"
        )


if __name__ == "__main__":
    main()
