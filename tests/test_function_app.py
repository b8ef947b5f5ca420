"""The app indexes what the host needs: the functions and their binding JSON."""

import json
from pathlib import Path

from scripts.local_host import indexed_functions

ROOT = Path(__file__).resolve().parent.parent


def _bindings() -> dict[str, list[dict]]:
    return {
        name: json.loads(f.get_function_json())["bindings"]
        for name, f in indexed_functions().items()
    }


def test_decimate_is_an_event_grid_trigger() -> None:
    (binding,) = _bindings()["decimate"]
    assert binding["type"] == "eventGridTrigger"
    assert binding["direction"] == "IN"
    assert binding["name"] == "event"


def test_convert_is_a_queue_trigger_on_the_configured_queue() -> None:
    (binding,) = _bindings()["convert"]
    sample = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    assert binding["type"] == "queueTrigger"
    assert binding["queueName"] == "%CONVERT_QUEUE%"
    assert binding["connection"] == "PIPELINE_STORAGE"
    assert "CONVERT_QUEUE" in sample and "PIPELINE_STORAGE" in sample


def test_host_json_contract() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    assert host["extensionBundle"]["version"] == "[4.*, 5.0.0)"
    queues = host["extensions"]["queues"]
    assert queues["messageEncoding"] == "base64"
    assert queues["maxDequeueCount"] >= 1


def test_trigger_modules_are_thin() -> None:
    # shared_code never imports azure.functions: everything there runs without the host.
    for path in (ROOT / "shared_code").rglob("*.py"):
        imports = [
            line for line in path.read_text().splitlines()
            if line.lstrip().startswith(("import ", "from "))
        ]  # fmt: skip
        assert not [line for line in imports if "azure.functions" in line], path


def test_every_function_the_infrastructure_expects_is_indexed() -> None:
    bindings = _bindings()
    assert set(bindings) == {
        "decimate", "convert", "health", "status", "reconcile", "retention", "seams",
    }  # fmt: skip
    (seams,) = bindings["seams"]
    assert seams["type"] == "timerTrigger"
    assert seams["schedule"] == "0 */5 * * * *"
    for name in ("health", "status"):
        trigger = next(b for b in bindings[name] if b["type"] == "httpTrigger")
        assert trigger["authLevel"] == "FUNCTION"
        assert trigger["methods"] == ["GET"]
