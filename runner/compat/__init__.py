"""Compatibility layers for programs written against other workflow APIs.

``from runner.compat import ray_workflows as workflow`` runs Ray Workflows
programs (Ray DAGs built with ``.bind()``) on the native runner; see
docs/migrating-from-ray-workflows.md.
"""
