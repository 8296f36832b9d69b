"""Runner plug-ins through the `evledger.runners` entry points (tests/plugins example)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from evledger.cli import cli, main
from runners.registry import load_runners, plugins


def test_example_plugin_is_installed_with_package_and_version() -> None:
    """`make setup` installs tests/plugins/evledger_example_plugin: both entry points show."""
    found = plugins()
    assert found["signflip"].package == "evledger-example-plugin"
    assert found["signflip"].version == "0.3.1"
    assert found["signflip"].entry_point == "evledger_example_plugin:RUNNER"
    loaded = load_runners()
    assert "ImportError" in str(loaded["broken-example"])
    assert loaded["signflip"].name == "signflip" and "static" in loaded and "compare" in loaded


def test_runners_lists_plugins_and_reports_the_broken_one() -> None:
    """`evledger runners --json`: the plug-in with package/version; the broken one reported."""
    res = CliRunner().invoke(cli, ["runners", "--json"])
    assert res.exit_code == 0, res.output
    by_name = {d["name"]: d for d in json.loads(res.output)["runners"]}
    assert by_name["signflip"]["available"] is True
    assert by_name["signflip"]["plugin"]["package"] == "evledger-example-plugin"
    assert by_name["broken-example"]["available"] is False
    assert "broken on purpose" in by_name["broken-example"]["error"]
    assert by_name["static"]["available"] is True and "plugin" not in by_name["static"]
    text = CliRunner().invoke(cli, ["runners"]).output
    assert "plug-in evledger-example-plugin 0.3.1" in text and "unavailable" in text


def test_plugin_statement_records_the_plugin_and_appends(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plug-in run is signed and appended; the statement names the plug-in package."""
    from ledger.api import init_ledger, open_ledger

    monkeypatch.setenv("EVLEDGER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("EVLEDGER_KEY", raising=False)
    init_ledger(tmp_path / "led", key_name="alice")
    args = ["--ledger", str(tmp_path / "led"), "run", "signflip", "--model", str(tiny_model)]
    res = CliRunner().invoke(cli, [*args, "--param", "scale=max", "--json"])
    assert res.exit_code == 0, res.output
    entry = list(open_ledger(tmp_path / "led").entries())[-1]
    assert entry.predicate_type == "https://evledger.dev/predicates/plugin/v1"
    res = CliRunner().invoke(
        cli, ["run", "signflip", "--model", str(tiny_model), "--dry-run", "--json"]
    )
    pred = json.loads(res.output)["predicate"]
    assert pred["runner"]["plugin"] == {
        "entry_point": "evledger_example_plugin:RUNNER",
        "package": "evledger-example-plugin",
        "version": "0.3.1",
    }
    assert pred["environment"]["device"]["type"] == "cpu"


def test_broken_plugin_run_exits_2_one_line(
    tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Running the broken plug-in: exit 2 with one line naming it."""
    with pytest.raises(SystemExit) as exc:
        main(["run", "broken-example", "--model", str(tiny_model), "--dry-run"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "broken-example" in err[0] and "broken on purpose" in err[0]


def test_device_is_recorded_and_cuda_without_gpu_is_refused(
    tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--device cpu is recorded with its name; cuda without a GPU: exit 2, one line."""
    import torch

    res = CliRunner().invoke(
        cli,
        ["run", "static", "--model", str(tiny_model), "--device", "auto", "--dry-run", "--json"],
    )
    assert res.exit_code == 0, res.output
    dev = json.loads(res.output)["predicate"]["environment"]["device"]
    assert dev["requested"] == "auto" and dev["deterministic_algorithms"] is True
    assert dev["type"] == ("cuda" if torch.cuda.is_available() else "cpu") and dev["name"]
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit) as exc:
            main(["run", "static", "--model", str(tiny_model), "--device", "cuda", "--dry-run"])
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "no CUDA device" in err[0]


@pytest.mark.skipif(
    not __import__("torch").cuda.is_available(), reason="needs a CUDA device (none here)"
)
@pytest.mark.parametrize("runner", ["static", "hessian", "ecsq", "proxy"])
def test_cuda_path_agrees_with_cpu(tiny_model: Path, runner: str) -> None:
    """Where a GPU exists, each heavy runner's figures on cuda match the CPU's (the device and
    its name recorded); float reductions may differ in the last digits, so a tolerance."""
    docs = {}
    for device in ("cpu", "cuda"):
        res = CliRunner().invoke(
            cli,
            ["run", runner, "--model", str(tiny_model), "--device", device, "--dry-run", "--json"],
        )
        assert res.exit_code == 0, res.output
        docs[device] = json.loads(res.output)["predicate"]
    assert docs["cuda"]["environment"]["device"]["type"] == "cuda"
    cpu, gpu = docs["cpu"]["metrics"], docs["cuda"]["metrics"]
    assert cpu["ratio_fp16_effective"] == pytest.approx(gpu["ratio_fp16_effective"], rel=1e-3)
    assert cpu["cos_min"] == pytest.approx(gpu["cos_min"], abs=1e-4)
