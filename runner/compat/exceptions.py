"""Ray Workflows' exception names, as the native errors they now are.

``except workflow.exceptions.WorkflowNotFoundError`` keeps working: each name
is the native class raised in its place (a :class:`~runner.errors.RunnerError`).
"""

from runner.errors import IllegalTransition, RunNotFound, RunWasCancelled, WorkflowFailed

WorkflowNotFoundError = RunNotFound  # no run with that workflow id
WorkflowStillActiveError = IllegalTransition  # delete() of a run that has not ended
WorkflowCancellationError = RunWasCancelled  # the output of a cancelled run
WorkflowExecutionError = WorkflowFailed  # a failed run whose step's own exception cannot be rebuilt

__all__ = ["WorkflowCancellationError", "WorkflowExecutionError", "WorkflowNotFoundError", "WorkflowStillActiveError"]
