"""Fan-out and fan-in: one Ray task per item, results gathered in order.

    .venv/bin/python examples/fanout.py

``map`` runs ``score`` once per document as its own task (each retried on
its own); ``reduce`` gets the list of results in input order.
"""

from __future__ import annotations

import runner

corpus = runner.Workflow("corpus")


@corpus.step()
def documents(count: int) -> list:
    return [f"document {i} " + "word " * (i % 7 + 1) for i in range(count)]


@corpus.map(after=documents, retries=2)
def score(doc: str) -> int:
    return len(doc.split())


@corpus.reduce(after=score)
def summary(scores: list) -> dict:
    return {"documents": len(scores), "words": sum(scores), "longest": max(scores)}


def main() -> None:
    client = runner.connect()
    run = client.submit(corpus, 100)
    print(run.result(timeout=120))
    step = next(s for s in run.steps() if s.name == "score")
    print(f"map 'score': {step.items_done}/{step.items} items in {step.duration:.2f}s")


if __name__ == "__main__":
    main()
