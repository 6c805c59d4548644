"""The names Ray's tools show for the project's actors and step tasks."""

from runner.ray_names import step_task_name, store_actor_name, worker_actor_name


def test_names_say_what_each_actor_and_task_is() -> None:
    assert store_actor_name("orders", "1a2b") == "runner:orders:store:1a2b"
    assert worker_actor_name("orders", "worker-9f") == "runner:orders:worker-9f"
    assert step_task_name("orders", "charge", None, "orders-77") == "orders.charge@orders-77"
    assert step_task_name("orders", "resize", 3, "orders-77") == "orders.resize[3]@orders-77"
