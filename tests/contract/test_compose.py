"""docker-compose.yml runs the same stack and the same workers, configured by the same env vars."""

from pathlib import Path

import yaml

from services.cli import WORKERS

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_the_same_infrastructure_and_every_worker():
    services = compose()["services"]
    assert {"kafka", "postgres", "redis", "init"} <= set(services)
    assert set(WORKERS) <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:3.9")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"


def test_workers_get_the_same_env_vars_as_the_local_stack():
    services = compose()["services"]
    local_env = (ROOT / "deploy/local/up.sh").read_text()
    for name in WORKERS:
        env = services[name]["environment"]
        for var in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "REDIS_URL"):
            assert var in env
            assert f"export {var}=" in local_env
        assert services[name]["command"] == ["run", name]


def test_each_worker_signs_in_to_kafka_as_its_own_service_on_a_secured_broker():
    from services.common.procs import principal_of

    services = compose()["services"]
    kafka = services["kafka"]["environment"]
    assert kafka["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
    assert kafka["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert "PLAINTEXT:PLAINTEXT" not in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    for name in WORKERS:
        env = services[name]["environment"]
        assert env["AFTERSALES_KAFKA_USERNAME"] == principal_of(name)
        assert env["AFTERSALES_KAFKA_SECURITY_PROTOCOL"] != "PLAINTEXT"
    assert services["init"]["environment"]["AFTERSALES_KAFKA_USERNAME"] == "admin"


def test_every_worker_serves_metrics_and_is_health_checked_on_its_readiness():
    services = compose()["services"]
    for name in WORKERS:
        service = services[name]
        assert service["environment"]["AFTERSALES_METRICS_PORT"] == "9100"
        assert any("/readyz" in part for part in service["healthcheck"]["test"]), name
    assert services["init"]["healthcheck"] == {"disable": True}
