"""The workflow definition API: a graph of components that facts flow along.

A component becomes runnable when all of its upstream components have a
result. Definitions are validated as they are built: every problem raises
:class:`runner.errors.DefinitionError` naming the component. Pure: no Ray, no I/O.
"""

from __future__ import annotations

import copy as pycopy
import dataclasses
import functools
import hashlib
import inspect
import re
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar, Union

from runner.approvals import OnReject, is_approval_name, signal_name
from runner.checkpoint import CheckpointStrategy, as_strategy
from runner.errors import DefinitionError, InvalidArgument
from runner.hooks import Hooks, hooks_of
from runner.inputs import check_input_type, validate_input
from runner.policy import Policy, Resources
from runner.vocabulary import Vocabulary

F = TypeVar("F", bound=Callable[..., Any])
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


class NodeKind(Vocabulary):
    STEP = "step"  # call fn(*upstream values)
    RULE = "rule"  # if when(*values): then(*values) else skipped
    MAP = "map"  # fn(item) for each item of the single upstream list
    WAIT = "wait"  # suspends until a signal arrives; its payload is the result
    SLEEP = "sleep"  # a durable timer; passes its input through
    CHILD = "child"  # runs another workflow as a child run; its result is the child's


@dataclass(frozen=True, kw_only=True)
class Node:
    """One component of a workflow. Built through :class:`Workflow` methods."""

    name: str
    kind: NodeKind
    after: tuple[str, ...]
    fn: Callable[..., Any] | None = None
    when: Callable[..., Any] | None = None
    takes_input: bool = True
    policy: Policy = field(default_factory=Policy)
    resources: Resources = field(default_factory=Resources)
    inline: bool = False
    signal: str | None = None
    seconds: float | None = None
    approval: str | None = None  # a wait for a person's decision (see runner.approvals)
    on_reject: OnReject = OnReject.FAIL
    child: Workflow | None = None  # the workflow a CHILD component runs
    checkpoint: bool = True  # False: its result is never appended on its own (see runner.checkpoint)

    @property
    def is_root(self) -> bool:
        return not self.after

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the step's function directly (handy in unit tests of user code)."""
        if self.fn is None:
            raise InvalidArgument(f"{self.kind.value} {self.name!r} has no function to call")
        return self.fn(*args, **kwargs)


Upstream = Union[Node, str]
After = Union[Upstream, Iterable[Upstream], None]


def _accepts(fn: Callable[..., Any], count: int) -> bool:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: trust the caller
        return True
    try:
        signature.bind(*([None] * count))
    except TypeError:
        return False
    return True


def _code_fingerprint(fn: Callable[..., Any] | None, digest: Any) -> None:
    """Feed ``fn``'s code to ``digest``: a partial's function and plain arguments, a bound
    method's function and class, a callable instance's class and ``__call__`` (so that two
    partials of one function with other arguments are two definitions, not one)."""
    if fn is None:
        digest.update(b"-")
        return
    if isinstance(fn, functools.partial):
        digest.update(b"partial:")
        _code_fingerprint(fn.func, digest)
        for value in fn.args:
            _value_fingerprint(value, digest)
        for keyword, value in sorted(fn.keywords.items()):
            digest.update(keyword.encode() + b"=")
            _value_fingerprint(value, digest)
        return
    if isinstance(fn, types.MethodType):
        digest.update(b"method of " + _qualified(type(fn.__self__)).encode())
        _code_fingerprint(fn.__func__, digest)
        return
    if not isinstance(fn, (types.FunctionType, types.BuiltinFunctionType, type)) and callable(fn):
        digest.update(b"instance of " + _qualified(type(fn)).encode())
        _code_fingerprint(type(fn).__call__, digest)
        return
    digest.update(getattr(fn, "__module__", "?").encode() + b":" + getattr(fn, "__qualname__", "?").encode())
    code = getattr(fn, "__code__", None)
    stack = [code] if isinstance(code, types.CodeType) else []
    while stack:
        current = stack.pop()
        digest.update(current.co_code)
        digest.update(repr(current.co_names).encode())
        for const in current.co_consts:
            if isinstance(const, types.CodeType):
                stack.append(const)
            else:
                digest.update(_stable_repr(const).encode())


def _value_fingerprint(value: Any, digest: Any) -> None:
    """A partial's argument: a callable by its code, plain data by value, anything else by its type
    (whose repr may hold a memory address, which would change the hash from process to process)."""
    if callable(value):
        _code_fingerprint(value, digest)
    elif type(value) in (list, tuple):
        digest.update(b"[")
        for item in value:
            _value_fingerprint(item, digest)
        digest.update(b"]")
    elif value is None or type(value) in (bool, int, float, str, bytes):
        digest.update(repr(value).encode())
    else:
        digest.update(b"<" + _qualified(type(value)).encode() + b">")


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _stable_repr(value: Any) -> str:
    """repr() that does not depend on the hash seed (frozenset constants iterate in hash order)."""
    if isinstance(value, frozenset):
        return "frozenset(" + repr(sorted(_stable_repr(v) for v in value)) + ")"
    if isinstance(value, tuple):
        return "(" + ", ".join(_stable_repr(v) for v in value) + ",)"
    return repr(value)


class Workflow:
    """A named graph of components.

    >>> wf = Workflow("orders")
    >>> @wf.step()
    ... def total(order): return sum(order["items"])
    >>> @wf.step(after=total)
    ... def tax(amount): return amount * 0.2
    """

    def __init__(
        self,
        name: str,
        *,
        output: Upstream | None = None,
        input_type: Any = None,
        checkpoint: CheckpointStrategy | str | None = None,
        max_concurrency: int | None = None,
    ) -> None:
        """``output``: the component whose value is the run's result. ``input_type``: a
        dataclass, TypedDict or validator callable the run's input must pass (see runner.inputs).
        ``checkpoint``: how often its runs append their results (runner.checkpoint; default
        ``Checkpoint.EVERY_STEP``); a submit may choose another.
        ``max_concurrency``: at most this many steps (or map items) of one run run at once,
        chosen by step ``priority``, then definition order (None: every runnable step starts)."""
        if max_concurrency is not None and (
            isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1
        ):
            raise DefinitionError(
                "max_concurrency", f"max_concurrency must be a whole number >= 1 or None, got {max_concurrency!r}"
            )
        self.max_concurrency = max_concurrency
        if not isinstance(name, str) or not NAME.match(name):
            raise DefinitionError(
                None, f"workflow name must be letters, digits, '_', '-' or '.', starting with a letter; got {name!r}"
            )
        if input_type is not None:
            try:
                check_input_type(input_type)
            except TypeError as exc:
                raise DefinitionError(None, f"workflow {name!r}: {exc}") from None
        self.name = name
        self.input_type = input_type
        self.checkpoint: CheckpointStrategy | None = None
        if checkpoint is not None:
            try:
                self.checkpoint = as_strategy(checkpoint)
            except InvalidArgument as exc:
                raise DefinitionError(None, f"workflow {name!r}: {exc}") from None
        self._nodes: dict[str, Node] = {}
        self._output: str | None = None
        if output is not None:  # components come later: checked by validate()
            if isinstance(output, Node):
                output = output.name
            if not isinstance(output, str):
                raise DefinitionError("output", f"output= takes a component or its name, got {output!r}")
            self._output = output

    # ----------------------------------------------------------------- reading
    @property
    def nodes(self) -> Mapping[str, Node]:
        """Components by name, in the order they were added (a topological order)."""
        return types.MappingProxyType(self._nodes)

    def node(self, name: str) -> Node:
        try:
            return self._nodes[name]
        except KeyError:
            raise DefinitionError(name, f"workflow {self.name!r} has no component of that name") from None

    def downstream(self, name: str) -> tuple[str, ...]:
        return tuple(n.name for n in self._nodes.values() if name in n.after)

    def sinks(self) -> tuple[str, ...]:
        fed = {up for n in self._nodes.values() for up in n.after}
        return tuple(name for name in self._nodes if name not in fed)

    @property
    def output(self) -> str | None:
        """The component whose value is the run's result (None: see ``sinks``)."""
        return self._output

    def definition_hash(self) -> str:
        """sha256 over the graph's shape, options and functions' code."""
        digest = hashlib.sha256(self.name.encode())
        for node in self._nodes.values():
            digest.update(repr((node.name, node.kind.value, node.after, node.takes_input, node.inline)).encode())
            digest.update(repr((node.signal, node.seconds, node.policy.describe(), node.resources.describe())).encode())
            _code_fingerprint(node.fn, digest)
            _code_fingerprint(node.when, digest)
            _code_fingerprint(node.policy.fallback, digest)
            if node.approval is not None:  # only then: the hashes of other definitions stay as they were
                digest.update(repr(("approval", node.approval, node.on_reject.value)).encode())
            if node.child is not None:
                digest.update(node.child.definition_hash().encode())
            if not node.checkpoint:  # only then: the hashes of other definitions stay as they were
                digest.update(b"checkpoint=False")
        digest.update(repr(self._output).encode())
        digest.update(getattr(self.input_type, "__qualname__", repr(self.input_type)).encode())
        if self.checkpoint is not None:
            digest.update(f"checkpoint={self.checkpoint}".encode())
        return digest.hexdigest()

    def check_input(self, value: Any) -> Any:
        """The run input ``value`` checked against ``input_type`` (InvalidInput lists every problem)."""
        return validate_input(self.name, self.input_type, value)

    def validate(self) -> None:
        """Check the whole graph (names, upstreams, cycles); raise DefinitionError."""
        if not self._nodes:
            raise DefinitionError(None, f"workflow {self.name!r} has no components; add a step first")
        state: dict[str, int] = {}

        def visit(name: str, path: tuple[str, ...]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                cycle = " -> ".join(path[path.index(name) :] + (name,))
                raise DefinitionError(name, f"is part of a cycle: {cycle}")
            state[name] = 1
            for up in self._nodes[name].after:
                if up not in self._nodes:
                    raise DefinitionError(name, f"depends on unknown component {up!r}")
                visit(up, path + (name,))
            state[name] = 2

        for name in self._nodes:
            visit(name, ())
        if self._output is not None and self._output not in self._nodes:
            raise DefinitionError("output", f"names unknown component {self._output!r}")

    # ---------------------------------------------------------------- building
    def set_output(self, component: Upstream) -> None:
        self._output = self._resolve((component,), "output")[0]

    def step(
        self,
        fn: F | None = None,
        *,
        name: str | None = None,
        after: After = None,
        retries: int = 0,
        backoff: str = "exponential",
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        timeout: float | None = None,
        on_failure: str = "halt",
        fallback: Callable[..., Any] | None = None,
        priority: int = 0,
        irreversible: bool = False,
        retry_exceptions: bool | list[type[BaseException]] | tuple[type[BaseException], ...] = True,
        catch_exceptions: bool = False,
        num_cpus: float | None = None,
        num_gpus: float | None = None,
        memory: int | None = None,
        resources: Mapping[str, float] | None = None,
        inline: bool = False,
        deadline: float | None = None,
        checkpoint: bool = True,
    ) -> Any:
        """Add a step: ``fn(*values of after)``; a root step gets the run input.

        Use as ``@wf.step(after=...)`` or ``wf.step(fn, after=...)``.
        Returns the :class:`Node`, which stays callable as the function.
        ``checkpoint=False``: the step's result is never appended on its own; it is carried in
        memory to its dependants and appended with the next checkpoint (runner.checkpoint), so
        a crash before that runs the step again.
        """
        options = dict(
            retries=retries,
            backoff=backoff,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            timeout=timeout,
            on_failure=on_failure,
            fallback=fallback,
            priority=priority,
            irreversible=irreversible,
            retry_exceptions=retry_exceptions,
            catch_exceptions=catch_exceptions,
            deadline=deadline,
        )
        ray_options = dict(num_cpus=num_cpus, num_gpus=num_gpus, memory=memory, resources=resources)

        def add(function: Callable[..., Any]) -> Node:
            node = self._add_callable(NodeKind.STEP, function, name, after, options, ray_options, inline)
            return self._set_checkpoint(node, checkpoint)

        return add if fn is None else add(fn)

    def reduce(self, fn: F | None = None, *, after: Upstream, name: str | None = None, **options: Any) -> Any:
        """Fan in: a step that gets the whole list a ``map`` produced."""
        if isinstance(after, (list, tuple, set)):
            raise DefinitionError(name, "reduce takes exactly one upstream component (usually a map)")

        def add(function: Callable[..., Any]) -> Node:
            _split_options(name or _name_of(function), options)
            return self.step(function, name=name, after=after, **options)

        return add if fn is None else add(fn)

    def map(self, fn: F | None = None, *, after: Upstream, name: str | None = None, **options: Any) -> Any:
        """Fan out: ``fn(item)`` once per item of the single upstream's list, each its own task.

        The map's result is the list of the items' results, in input order.
        Options are those of :meth:`step`; each item is retried on its own.
        """
        if isinstance(after, (list, tuple, set)):
            raise DefinitionError(name, "map takes exactly one upstream component whose result is a list")

        def add(function: Callable[..., Any]) -> Node:
            policy_opts, ray_opts, inline = _split_options(name or _name_of(function), options)
            node = self._add_callable(NodeKind.MAP, function, name, after, policy_opts, ray_opts, inline, arity=1)
            return self._set_checkpoint(node, options.get("checkpoint", True))

        return add if fn is None else add(fn)

    def rule(
        self,
        then: F | None = None,
        *,
        when: Callable[..., Any],
        after: After = None,
        name: str | None = None,
        **options: Any,
    ) -> Any:
        """Add ``when(condition) -> then(reaction)``; both get the upstream values.

        When the condition is false the rule is recorded as skipped; a
        component downstream is skipped only if all its upstreams were.
        """

        def add(function: Callable[..., Any]) -> Node:
            label = name or _name_of(function)
            if not callable(when):
                raise DefinitionError(label, f"rule condition `when` must be callable, got {when!r}")
            policy_opts, ray_opts, inline = _split_options(label, options)
            node = self._add_callable(NodeKind.RULE, function, name, after, policy_opts, ray_opts, inline, when=when)
            return self._set_checkpoint(node, options.get("checkpoint", True))

        return add if then is None else add(then)

    def wait_for(self, signal: str, *, name: str | None = None, after: After = None) -> Node:
        """Suspend until ``signal`` is sent to the run; the payload is the result.

        A signal sent before the run reaches the wait is kept and used.
        """
        if not isinstance(signal, str) or not NAME.match(signal):
            raise DefinitionError(name, f"signal name must be a plain identifier, got {signal!r}")
        label = name or f"wait_{signal}"
        upstream = self._resolve(_as_tuple(after), label)
        return self._register(Node(name=label, kind=NodeKind.WAIT, after=upstream, signal=signal))

    def wait_for_approval(
        self, approval: str, *, on_reject: str = "fail", name: str | None = None, after: After = None
    ) -> Node:
        """Suspend until a person approves or rejects ``approval`` (``client.approve`` /
        ``client.reject``, ``runner approve|reject``). Approved: the result is the
        :class:`~runner.approvals.Decision`. Rejected, by ``on_reject``: "fail" fails the run
        with ApprovalRejected; "skip" skips the approval (and what only it feeds); "branch"
        passes the Decision on, so downstream rules look at ``decision.approved``.
        A decision made before the run reaches the approval is kept and used."""
        label = name or f"approve_{approval}"
        if not is_approval_name(approval):
            raise DefinitionError(
                name, f"approval name must be a plain identifier (letters, digits, '_'), got {approval!r}"
            )
        try:
            reaction = OnReject(on_reject)
        except ValueError:
            choices = ", ".join(repr(o.value) for o in OnReject)
            raise DefinitionError(label, f"on_reject must be one of {choices}; got {on_reject!r}") from None
        if any(node.approval == approval for node in self._nodes.values()):
            raise DefinitionError(label, f"workflow {self.name!r} already waits for approval {approval!r}")
        upstream = self._resolve(_as_tuple(after), label)
        node = Node(
            name=label,
            kind=NodeKind.WAIT,
            after=upstream,
            signal=signal_name(approval),
            approval=approval,
            on_reject=reaction,
        )
        return self._register(node)

    def approvals(self) -> tuple[str, ...]:
        """The names of the approvals this workflow waits for."""
        return tuple(node.approval for node in self._nodes.values() if node.approval is not None)

    def with_policies(self, policies: Mapping[str, Policy]) -> Workflow:
        """A copy of this workflow whose components named in ``policies`` have those policies
        (submit-time overrides: see :mod:`runner.policy_overrides`); this one is unchanged.
        DefinitionError if a component is unknown or an inline one would get a timeout or deadline."""
        unknown = sorted(set(policies) - set(self._nodes))
        if unknown:
            raise DefinitionError(unknown[0], f"workflow {self.name!r} has no component of that name")
        nodes: dict[str, Node] = {}
        for name, node in self._nodes.items():
            policy = policies.get(name)
            if policy is not None:
                _refuse_inline_limits(name, node.inline, policy)
                node = replace(node, policy=policy)
            nodes[name] = node
        copy = pycopy.copy(self)  # every attribute as it is; only the components are new
        copy._nodes = nodes
        return copy

    def sleep(self, seconds: float, *, name: str | None = None, after: After = None) -> Node:
        """A durable timer: waits ``seconds`` (surviving restarts), then passes its input on."""
        label = name or f"sleep_{len(self._nodes)}"
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise DefinitionError(label, f"sleep needs a number of seconds >= 0, got {seconds!r}")
        upstream = self._resolve(_as_tuple(after), label)
        if len(upstream) > 1:
            raise DefinitionError(label, "sleep takes at most one upstream component")
        return self._register(Node(name=label, kind=NodeKind.SLEEP, after=upstream, seconds=float(seconds)))

    def child_run(
        self, workflow: Workflow, *, name: str | None = None, after: After = None, on_failure: str = "halt"
    ) -> Node:
        """Run ``workflow`` as a child run and wait for it, holding no worker meanwhile; its
        result is this component's. The child's input is the upstream component's value (at
        most one), or this run's input for a root component. The child's run id is this run's
        id and the component's name, so a retry or a recovery never starts a second child.
        A child that fails or is cancelled fails this component (no retries: resume the child,
        then this run); ``on_failure="skip"`` skips it instead. See :mod:`runner.child_runs`."""
        label = name or (f"child_{workflow.name}" if isinstance(workflow, Workflow) else "child_run")
        if not isinstance(workflow, Workflow):
            raise DefinitionError(label, f"child_run takes a runner.Workflow, got {type(workflow).__name__}")
        if workflow is self:
            raise DefinitionError(label, f"workflow {self.name!r} cannot run itself as a child")
        workflow.validate()
        upstream = self._resolve(_as_tuple(after), label)
        if len(upstream) > 1:
            raise DefinitionError(label, "a child run takes at most one upstream component (its input)")
        try:
            policy = Policy(on_failure=on_failure)
        except InvalidArgument as exc:
            raise DefinitionError(label, str(exc)) from None
        return self._register(Node(name=label, kind=NodeKind.CHILD, after=upstream, policy=policy, child=workflow))

    # ------------------------------------------------------------------- hooks
    @property
    def hooks(self) -> Hooks:
        """The hooks this workflow's runs call in their worker (see runner.hooks)."""
        return hooks_of(self)

    def add_hooks(self, hooks: Hooks) -> None:
        """Call ``hooks`` as this workflow's runs move; they run in the Worker actor driving the run
        (see runner.hooks). Added to those already given; a hook that raises is logged."""
        if not isinstance(hooks, Hooks):
            raise DefinitionError(None, f"add_hooks takes a runner.Hooks, got {type(hooks).__name__}")
        self._hooks = self.hooks.merged(hooks)

    # ---------------------------------------------------------------- internal
    def _add_callable(
        self,
        kind: NodeKind,
        function: Callable[..., Any],
        name: str | None,
        after: After,
        policy_options: Mapping[str, Any],
        ray_options: Mapping[str, Any],
        inline: bool,
        *,
        arity: int | None = None,
        when: Callable[..., Any] | None = None,
    ) -> Node:
        label = name or _name_of(function)
        if not callable(function):
            raise DefinitionError(label, f"a {kind.value} needs a callable, got {function!r}")
        upstream = self._resolve(_as_tuple(after), label)
        try:
            policy = Policy(**policy_options)
            resources = Resources(
                num_cpus=ray_options.get("num_cpus"),
                num_gpus=ray_options.get("num_gpus"),
                memory=ray_options.get("memory"),
                custom=ray_options.get("resources") or {},
            )
        except InvalidArgument as exc:
            raise DefinitionError(label, str(exc)) from None
        if not isinstance(inline, bool):
            raise DefinitionError(label, f"inline must be True or False, got {inline!r}")
        _refuse_inline_limits(label, inline, policy)
        if kind is NodeKind.MAP and len(upstream) != 1:
            raise DefinitionError(label, "map takes exactly one upstream component whose result is a list")
        takes_input = True
        if arity is None:
            if upstream:
                arity = len(upstream)
            else:
                takes_input = _wants_input(function) and _accepts(function, 1)
                if not takes_input and not _accepts(function, 0):
                    raise DefinitionError(label, "a root component takes the run input: one argument, or none")
                arity = 1 if takes_input else 0
        for role, fn in (("function", function), ("condition", when), ("fallback", policy.fallback)):
            if fn is not None and not _accepts(fn, arity):
                raise DefinitionError(label, _arity_message(role, fn, arity, upstream))
        node = Node(
            name=label,
            kind=kind,
            after=upstream,
            fn=function,
            when=when,
            takes_input=takes_input,
            policy=policy,
            resources=resources,
            inline=inline,
        )
        return self._register(node)

    def _set_checkpoint(self, node: Node, checkpoint: object) -> Node:
        """``node`` (registered already) with its ``checkpoint`` option; DefinitionError unless a bool."""
        if checkpoint is True:
            return node
        if checkpoint is not False:
            del self._nodes[node.name]
            raise DefinitionError(node.name, f"checkpoint must be True or False, got {checkpoint!r}")
        node = dataclasses.replace(node, checkpoint=False)
        self._nodes[node.name] = node
        return node

    def _register(self, node: Node) -> Node:
        if not NAME.match(node.name):
            raise DefinitionError(node.name, "names must be letters, digits, '_', '-' or '.', starting with a letter")
        if node.name in self._nodes:
            raise DefinitionError(
                node.name, f"a component named {node.name!r} already exists; pass name= to tell them apart"
            )
        self._nodes[node.name] = node
        return node

    def _resolve(self, after: tuple[Upstream, ...], label: str) -> tuple[str, ...]:
        names: list[str] = []
        for up in after:
            if isinstance(up, Node):
                if self._nodes.get(up.name) is not up:
                    raise DefinitionError(label, f"depends on {up.name!r}, which belongs to another workflow")
                up_name = up.name
            elif isinstance(up, str):
                up_name = up
            else:
                raise DefinitionError(label, f"after= takes components or their names, got {up!r}")
            if up_name not in self._nodes:
                raise DefinitionError(label, f"depends on unknown component {up_name!r}; define it first")
            if up_name in names:
                raise DefinitionError(label, f"lists {up_name!r} twice in after=")
            names.append(up_name)
        return tuple(names)


def _refuse_inline_limits(label: str, inline: bool, policy: Policy) -> None:
    """An inline step runs on the worker's own event loop: nothing can interrupt it safely
    there, so a ``timeout`` or ``deadline`` it could not honour is refused."""
    if not inline:
        return
    for option in ("timeout", "deadline"):
        if getattr(policy, option) is not None:
            raise DefinitionError(
                label,
                f"an inline step cannot have a {option}: it runs inside the worker, where nothing can "
                f"interrupt it; drop inline=True (it then runs as a Ray task, which can be cancelled) "
                f"or the {option}",
            )


_POLICY_KEYS = {
    "retries",
    "backoff",
    "backoff_base",
    "backoff_max",
    "timeout",
    "on_failure",
    "fallback",
    "priority",
    "irreversible",
    "retry_exceptions",
    "catch_exceptions",
    "deadline",
}
_RAY_KEYS = {"num_cpus", "num_gpus", "memory", "resources"}


def _split_options(label: str, options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], bool]:
    unknown = set(options) - _POLICY_KEYS - _RAY_KEYS - {"inline", "checkpoint"}
    if unknown:
        raise DefinitionError(label, f"unknown option(s) {', '.join(sorted(unknown))}")
    policy = {k: v for k, v in options.items() if k in _POLICY_KEYS}
    ray = {k: v for k, v in options.items() if k in _RAY_KEYS}
    return policy, ray, options.get("inline", False)


def _as_tuple(after: After) -> tuple[Upstream, ...]:
    if after is None:
        return ()
    if isinstance(after, (Node, str)):
        return (after,)
    return tuple(after)


def _name_of(function: Any) -> str:
    return str(getattr(function, "__name__", type(function).__name__))


def _wants_input(function: Callable[..., Any]) -> bool:
    """A root function that accepts 0 or 1 arguments gets the input iff it has a parameter."""
    try:
        params = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params)


def _arity_message(role: str, fn: Callable[..., Any], arity: int, upstream: tuple[str, ...]) -> str:
    source = f"upstream {', '.join(upstream)}" if upstream else "the run input"
    return f"its {role} {_name_of(fn)!r} cannot be called with {arity} positional argument(s) ({source})"
