"""Resume a failed run in place, after its cause is fixed.

    .venv/bin/python examples/resume_failed.py

A step fails for good (its service is down and its retries run out), so the
run fails. Once the service is back, ``resume`` continues the SAME run (same
run id) from the step that failed: every recorded result is kept, the steps
that succeeded do not run again, the failed step gets a fresh retry budget,
and the history records ``RunReopened`` with the reason given. A cancelled run
resumes the same way. ``replay`` and ``fork`` start new runs instead.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import runner

SERVICE_UP = Path(tempfile.gettempdir()) / "ray-runner-example-service-up"

invoices = runner.Workflow("invoices")


@invoices.step()
def load(customer: str) -> dict:
    return {"customer": customer, "amount": 42.0}


@invoices.step(after=load, retries=1, backoff="none")
def send(invoice: dict) -> str:
    if not SERVICE_UP.exists():
        raise ConnectionError("mail service unavailable")
    return f"invoice of {invoice['amount']} sent to {invoice['customer']}"


def main() -> None:
    client = runner.connect()
    SERVICE_UP.unlink(missing_ok=True)
    run = client.submit(invoices, "acme")
    try:
        run.result(timeout=60)
    except ConnectionError as exc:
        print(f"failed:  {exc} (status {run.status().value})")

    SERVICE_UP.touch()  # the fix: the service is back
    run.resume(reason="mail service back")
    print(f"resumed: {run.result(timeout=60)}")
    print(f"run id:  {run.run_id} (the same run)")
    print("history:", " ".join(type(s.event).__name__ for s in run.history()))
    SERVICE_UP.unlink()


if __name__ == "__main__":
    main()
