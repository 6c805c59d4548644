"""Continuations: a step hands its work on to another call, whose result becomes its own.

    .venv/bin/python examples/continuation_factorial.py

``factorial`` and ``collatz`` are loops written as recursion: each call
returns ``runner.continuation(fn, *args)`` until it has the answer. Every
level is recorded (a ``StepContinued`` event naming the stored call) before
it runs, so a crash re-runs only the level that was running; the run's state
holds one call per step however deep the loop goes.
"""

from __future__ import annotations

import runner


def factorial(n: int, acc: int = 1) -> object:
    return acc if n <= 1 else runner.continuation(factorial, n - 1, acc * n)


def collatz(n: int, steps: int = 0) -> object:
    """How many steps the Collatz sequence takes from n to 1: a loop until a condition holds."""
    if n == 1:
        return steps
    return runner.continuation(collatz, n // 2 if n % 2 == 0 else 3 * n + 1, steps + 1)


maths = runner.Workflow("maths")


@maths.step()
def fact(n: int) -> object:
    return runner.continuation(factorial, n)


@maths.step()
def stopping_time(n: int) -> object:
    return runner.continuation(collatz, n)


@maths.step(after=[fact, stopping_time], inline=True)
def report(f: int, steps: int) -> str:
    return f"factorial: {f}, collatz steps: {steps}"


def main() -> None:
    client = runner.connect()
    run = client.submit(maths, 27)
    print(run.result(timeout=120))
    levels = [e.event.level for e in run.history() if type(e.event).__name__ == "StepContinued"]
    print(f"{len(levels)} continuations recorded, the deepest at level {max(levels)}")


if __name__ == "__main__":
    main()
