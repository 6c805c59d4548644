"""Deadlines and policies given at submit.

    .venv/bin/python examples/deadlines.py

- ``deadline=`` on a step bounds it across all its attempts and retries,
  counted from its first start: no retry starts after it, an attempt still
  running then is cancelled, and the step fails with ``runner.DeadlineExceeded``.
- ``submit(..., deadline=seconds)`` bounds the whole run: past it the run fails
  with ``runner.RunDeadlineExceeded``, its running steps cancelled, even if it
  was waiting (its wake-up is stored, so a restart changes nothing).
- ``submit(..., policies={...})`` overrides step policies for one run: by exact
  name, then glob pattern, then ``"default"``.
"""

from __future__ import annotations

import runner

sync = runner.Workflow("sync")


@sync.step(retries=20, backoff="linear", backoff_base=0.5, deadline=2.0)
def fetch_flaky(x: int) -> int:
    raise ConnectionError("the upstream service is down")


approval = runner.Workflow("needs_ok")
approval.wait_for("ok", name="gate")

overridable = runner.Workflow("overridable")


@overridable.step()  # no retries in the definition
def fetch_once(x: int) -> int:
    raise ConnectionError("flaky")


def main() -> None:
    client = runner.connect()
    try:
        client.submit(sync, 1).result(timeout=60)
    except runner.DeadlineExceeded as exc:
        print("step deadline:", exc)
    try:
        client.submit(approval, deadline=1.5).result(timeout=60)
    except runner.RunDeadlineExceeded as exc:
        print("run deadline:", exc)
    run = client.submit(overridable, 1, policies={"fetch_*": {"retries": 2, "backoff": "none"}})
    try:
        run.result(timeout=60)
    except ConnectionError:
        failed = [e.event.attempt for e in run.history() if type(e.event).__name__ == "StepFailed"]
        print("attempts with retries=2 given at submit:", failed)
    try:
        client.submit(overridable, 1, policies={"fetch_onse": runner.Policy(retries=2)})
    except runner.UnknownPolicyTarget as exc:
        print("typo refused:", exc)


if __name__ == "__main__":
    main()
