"""The web view as a Ray Serve application on the cluster (``runner ui --serve``,
``client.serve_ui()``); needs ``ray-runner[serve]`` on every node's image.

The application is one deployment of one replica that reserves no CPU (it waits
on the Store actor, it computes little). The replica runs inside Ray: it joins
no cluster and starts no Runner; it attaches to the namespace's running Runner
and reads through its Store actor, as a client does, and acts through that
client only with ``allow_actions``. Serve's HTTP proxy forwards the ASGI scope
with the route prefix as ``root_path``: the pages' links start with it.

Deploying again under the same name replaces the application; ``undeploy``
removes it (Serve itself keeps running for other applications: ``serve shutdown``
ends it). A proxy listening beyond loopback needs a token, as for ``runner ui``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ray import serve
from ray.serve.context import _get_global_client
from ray.serve.exceptions import RayServeException
from starlette.types import ASGIApp

from runner.client import Client
from runner.errors import InvalidArgument, RunnerError
from runner.ray_calls import RunnerCalls, find_runner
from runner.runner import RUNNER_NAME
from runner.ui import access
from runner.ui.app import UiApp

DEFAULT_NAME = "runner-ui"
DEFAULT_ROUTE_PREFIX = "/runner"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000  # Serve's own default: its proxy serves every Serve application of the cluster
DEPLOYMENT = "RunnerUi"


@dataclass(frozen=True, kw_only=True)
class ServedUi:
    """The web view deployed on the cluster: ``url`` is where to open it, ``undeploy()`` removes it."""

    name: str
    url: str

    def undeploy(self) -> bool:
        return undeploy(self.name)


@dataclass(frozen=True, kw_only=True)
class ReplicaSettings:
    """What the replica needs to build the view (shipped to it with the deployment)."""

    namespace: str
    allow_actions: bool
    token: str | None


def build_app(settings: ReplicaSettings) -> ASGIApp:
    """The view's Starlette app, built in the replica: over the namespace's Store actor."""
    client = attach(settings.namespace)
    actions_client = client if settings.allow_actions else None
    ui = UiApp(client.reader, client=actions_client, allow_actions=settings.allow_actions, token=settings.token)
    return ui.app


def attach(namespace: str) -> Client:
    """A client of the namespace's running Runner, from inside Ray (a replica): no ``ray.init``,
    no new Runner. RunnerUnavailable if none runs."""
    calls = RunnerCalls(find_runner(RUNNER_NAME, namespace), lambda: find_runner(RUNNER_NAME, namespace))
    store_url: str = calls.call(lambda r: r.store_url_in_use.remote())
    return Client(calls, namespace=namespace, store_url=store_url)


def deploy(
    client: Client,
    *,
    route_prefix: str = DEFAULT_ROUTE_PREFIX,
    name: str = DEFAULT_NAME,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    allow_actions: bool = False,
    token: str | None = None,
) -> ServedUi:
    """Deploy the view of ``client``'s namespace as Serve application ``name`` at ``route_prefix``;
    returns once it answers. ``host``/``port``: for Serve's proxy when this call starts Serve (a
    running Serve keeps its own, which must pass the same token rule)."""
    prefix = checked_route_prefix(route_prefix)
    access.check_bind(host, token)  # before starting anything
    settings = ReplicaSettings(namespace=client.namespace, allow_actions=allow_actions, token=token)

    def build() -> ASGIApp:  # called in the replica
        return build_app(settings)

    with _serve_errors(f"deploy the web view as Serve application {name!r}"):
        serve.start(http_options={"host": host, "port": port})
        proxy_host, proxy_port = _proxy_address()
        proxy_host = check_proxy(proxy_host, token)
        ingress = serve.ingress(build)()
        deployment = serve.deployment(name=DEPLOYMENT, num_replicas=1, ray_actor_options={"num_cpus": 0})(ingress)
        serve.run(deployment.bind(), name=name, route_prefix=prefix)
    shown = f"[{proxy_host}]" if ":" in proxy_host else proxy_host
    return ServedUi(name=name, url=f"http://{shown}:{proxy_port}{'' if prefix == '/' else prefix}")


def undeploy(name: str = DEFAULT_NAME) -> bool:
    """Remove Serve application ``name``; False if it was not deployed (or Serve is not running)."""
    with _serve_errors(f"remove Serve application {name!r}"):
        try:
            _get_global_client()
        except RayServeException:
            return False  # Serve is not running on this cluster
        if name not in serve.status().applications:
            return False
        serve.delete(name)
    return True


def checked_route_prefix(route_prefix: str) -> str:
    """``route_prefix`` as Serve takes it: starting with "/", not ending with one (but "/" itself)."""
    if not isinstance(route_prefix, str) or not route_prefix.startswith("/"):
        raise InvalidArgument(
            f"the route prefix must start with '/' (e.g. {DEFAULT_ROUTE_PREFIX!r}), got {route_prefix!r}"
        )
    return route_prefix.rstrip("/") or "/"


def check_proxy(proxy_host: str | None, token: str | None) -> str:
    """The host of Serve's proxy; one beyond loopback needs a token, as ``runner ui --host`` does."""
    if proxy_host is None:
        raise InvalidArgument("Ray Serve runs without an HTTP proxy on this cluster: the web view cannot be reached")
    if not access.is_loopback(proxy_host) and not token:
        raise InvalidArgument(
            f"Ray Serve's HTTP proxy listens on {proxy_host}: anyone who can reach it could read your runs; "
            f"give a token (--token or the {access.TOKEN_ENV} environment variable) or serve on 127.0.0.1"
        )
    return proxy_host


def _proxy_address() -> tuple[str | None, int]:
    """Where Serve's proxies listen (the running Serve's settings, which may predate this call).
    Read through Serve's own client accessor: no public call tells them."""
    serve_client = _get_global_client()
    assert serve_client is not None  # raises instead when no Serve runs
    config = serve_client.http_config
    return config.host, int(config.port)


@contextmanager
def _serve_errors(doing: str) -> Iterator[None]:
    """Serve's and Ray's failures as RunnerError: no Ray exception type leaves a public call."""
    try:
        yield
    except RunnerError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RunnerError(
            f"Ray Serve could not {doing} ({type(exc).__name__}: {first}); "
            "`serve status` and the replica's log (Ray dashboard, Serve tab) tell more"
        ) from exc
