"""Cron schedules: a workflow started at every tick, exactly once per tick.

    .venv/bin/python examples/schedule.py

``client.schedule(wf, cron=..., input=..., name=...)`` stores the schedule; the
Runner starts a run at each tick (UTC). Each tick's run id is
``<name>-<tick time>``, so a Runner that restarts mid-tick starts the same run,
not a second one; ticks missed while no Runner was up start only the latest.
This one ticks every 2 seconds (six fields: seconds last), waits for three
runs, then removes the schedule (its runs stay).
"""

from __future__ import annotations

import time

import runner

report = runner.Workflow("report")


@report.step()
def count(config: dict) -> str:
    return f"{config['region']}: report at {time.strftime('%H:%M:%S')}"


def main() -> None:
    client = runner.connect()
    client.schedule(report, cron="* * * * * */2", input={"region": "eu"}, name="eu-report")
    try:
        print("schedules:", [(s.name, s.cron) for s in client.list_schedules()])
        deadline = time.monotonic() + 60
        runs = client.list_runs(workflow="report")
        while len(runs) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
            runs = client.list_runs(workflow="report")
    finally:
        client.unschedule("eu-report")
    for record in sorted(runs, key=lambda r: r.run_id):
        print(record.run_id, "->", client.get(record.run_id).result(timeout=60))


if __name__ == "__main__":
    main()
