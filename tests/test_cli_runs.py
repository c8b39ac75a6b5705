"""`hmgdm pretrain` run folders, signals, budgets and errors, through the real command in a subprocess."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from hmgdm_core.graph import GraphDataset
from hmgdm_core.train import load_checkpoint
from hmgdm_core.train.run_folder import LOCK_FILE

HMGDM = shutil.which("hmgdm") or pytest.fail("the hmgdm console script is not installed")
TINY = {
    "model": {
        "feature_dim": 192,
        "embed_dim": 16,
        "hidden_dim": 8,
        "latent_mlp_dim": 4,
        "time_mlp_dim": 16,
        "block_mlp_dim": 4,
        "head_dims": [8, 16],
    },
    "train": {"device": "cpu", "batch_size": 2, "lr": 1e-3},
}


def hmgdm(*args, check_status=None, timeout=300):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([HMGDM, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env)
    if check_status is not None:
        assert result.returncode == check_status, result.stdout + result.stderr
    return result


def one_line_error(result, status=2):
    """The CLI's contract for every project error: the status, one stderr line, no traceback."""
    assert result.returncode == status, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if "error" in line.lower()]  # progress bars aside
    assert len(lines) == 1 and lines[0].startswith("hmgdm ") and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.fixture
def run_inputs(tmp_path, small_patch_graphs):
    graphs = tmp_path / "graphs.pt"
    GraphDataset.from_graphs(small_patch_graphs).save(graphs)
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    return graphs, config


def test_help_imports_neither_torch_nor_subcommand_code():
    code = (
        "import sys; from hmgdm_core.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'torch_geometric', 'numpy', 'tqdm', 'hmgdm_core.train') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert "pretrain" in hmgdm("--help", check_status=0).stdout


def test_every_option_has_help():
    import argparse

    from hmgdm_core.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [
        f"{name} {action.dest}"
        for name, command in sub.choices.items()
        for action in command._actions
        if not isinstance(action, argparse._HelpAction) and not action.help
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--batch-size", "-3"], "batch_size must be ≥ 1, got -3"),
        (["--batch-size", "0"], "batch_size must be ≥ 1, got 0"),
        (["--steps", "0"], "max_steps must be ≥ 1, got 0"),
        (["--config", "missing.json"], "cannot read it"),
    ],
)
def test_bad_values_are_one_line_errors(run_inputs, tmp_path, options, expected):
    graphs, _ = run_inputs
    line = one_line_error(hmgdm("pretrain", graphs, "--out", tmp_path / "run", *options))
    assert line.startswith("hmgdm pretrain: error:") and expected in line
    assert not list((tmp_path / "run").glob("checkpoint-*.pt"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "not valid JSON"),
        ('{"train": {"batch_size": "4"}}', "TrainConfig.batch_size must be an integer, got '4'"),
        ('{"train": {"lr": NaN}}', "TrainConfig.lr must be a finite number, got nan"),
        ('{"mask": {"node_ratio": 1.5}}', "MaskConfig.node_ratio must be in [0.0, 1.0]"),
        ('{"train": [1, 2]}', "TrainConfig must be a JSON object"),
    ],
)
def test_bad_config_files_are_one_line_errors(run_inputs, tmp_path, text, expected):
    graphs, _ = run_inputs
    (tmp_path / "bad.json").write_text(text)
    line = one_line_error(hmgdm("pretrain", graphs, "--out", tmp_path / "run", "--config", tmp_path / "bad.json"))
    assert f"--config {tmp_path / 'bad.json'}" in line and expected in line


def test_run_folder_is_locked_guarded_and_resumed_not_restarted(run_inputs, tmp_path):
    graphs, config = run_inputs
    run = tmp_path / "run"
    base = ("pretrain", graphs, "--out", run, "--config", config)
    # A live process holds the folder: refused, naming it.
    run.mkdir()
    (run / LOCK_FILE).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": "now"}))
    line = one_line_error(hmgdm(*base, "--steps", "2"))
    assert f"process {os.getpid()} on host {socket.gethostname()}" in line
    # The holder is dead (a finished child): the stale lock is taken over, and stale temporaries removed.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (run / LOCK_FILE).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "started": "then"}))
    (run / ".checkpoint-00000001.pt.abc123.tmp").write_bytes(b"\0" * 1000)
    out = hmgdm(*base, "--steps", "2", check_status=0).stdout
    assert "finished at step 2" in out
    # It says what it does before its first event, which takes seconds for thousands of graphs.
    assert " graphs (feature check, fingerprint, input statistics)" in out
    assert not (run / LOCK_FILE).exists() and not list(run.glob(".*.tmp"))
    # A new run into the finished one's folder is refused; the message says how to continue it.
    line = one_line_error(hmgdm(*base, "--steps", "2"))
    assert "already holds a run" in line and f"--resume {run}" in line and "--overwrite" in line
    # Re-running the finished run with --resume continues from its last step, not from step 0.
    out = hmgdm(*base, "--steps", "2", "--resume", run, check_status=0).stdout
    assert "steps 2 -> 2" in out and "finished at step 2" in out
    assert " graphs (feature check, fingerprint)\n" in out  # a resume loads its statistics
    out = hmgdm(*base, "--steps", "3", "--resume", run, check_status=0).stdout
    assert "steps 2 -> 3" in out
    # --overwrite starts over: the old run's checkpoints are gone, so the folder holds only the new run.
    out = hmgdm(*base, "--steps", "1", "--overwrite", check_status=0).stdout
    assert "steps 0 -> 1" in out
    assert [p.name for p in sorted(run.glob("checkpoint-*.pt"))] == ["checkpoint-00000001.pt"]


def test_resume_refuses_a_changed_config_unless_allowed(run_inputs, tmp_path):
    graphs, config = run_inputs
    run = tmp_path / "run"
    hmgdm("pretrain", graphs, "--out", run, "--config", config, "--steps", "1", check_status=0)
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps({**TINY, "mask": {"node_ratio": 0.5}, "diffusion": {"num_steps": 100}}))
    base = ("pretrain", graphs, "--out", run, "--config", changed, "--steps", "2", "--resume", run)
    line = one_line_error(hmgdm(*base))
    assert "mask.node_ratio: 0.6 -> 0.5" in line and "diffusion.num_steps: 1000 -> 100" in line
    assert "--allow-config-change" in line
    assert "finished at step 2" in hmgdm(*base, "--allow-config-change", check_status=0).stdout


def test_steps_runs_write_periodic_checkpoints(run_inputs, tmp_path):
    graphs, config = run_inputs
    result = hmgdm(
        "pretrain",
        graphs,
        "--out",
        tmp_path / "run",
        "--config",
        config,
        "--steps",
        "20",
        "--batch-size",
        "1",
        check_status=0,
    )
    written = [int(step) for step in re.findall(r"checkpoint-(\d+)\.pt", result.stdout.split("finished")[0])]
    assert written == [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]  # every tenth of the run, not only the last step
    steps = [load_checkpoint(p).meta["step"] for p in sorted((tmp_path / "run").glob("checkpoint-*.pt"))]
    assert steps == [16, 18, 20]  # the last keep_last = 3 are kept


def _wait_until_training(process, run, deadline=240):
    """Until the run holds its folder (it takes the lock right before its first step), then a moment more."""
    end = time.monotonic() + deadline
    while not (run / LOCK_FILE).exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < end, "the run did not start in time"
        time.sleep(0.1)
    time.sleep(1.0)


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_finishes_the_step_saves_and_exits_with_one_line(run_inputs, tmp_path, sig, status):
    graphs, config = run_inputs
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [HMGDM, "pretrain", graphs, "--out", run, "--config", config, "--steps", "1000000"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    _wait_until_training(process, run)
    process.send_signal(sig)
    out, err = process.communicate(timeout=120)
    assert process.returncode == status, out + err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    line = [x for x in out.splitlines() if x.startswith("stopped by")]
    assert len(line) == 1 and f"stopped by {sig.name} at step" in line[0] and f"--resume {run}" in line[0]
    step = int(line[0].split("at step ")[1].split(";")[0])
    assert load_checkpoint(run).meta["step"] == step
    assert not (run / LOCK_FILE).exists()


def test_minutes_is_a_wall_clock_budget(run_inputs, tmp_path):
    graphs, config = run_inputs
    out = hmgdm(
        "pretrain",
        graphs,
        "--out",
        tmp_path / "run",
        "--config",
        config,
        "--steps",
        "1000000",
        "--minutes",
        "0.05",
        check_status=0,
    ).stdout
    assert "time budget of 0.05 min reached at step" in out
    step = int(out.split("reached at step ")[1].split(";")[0])
    assert 0 < step < 1_000_000 and load_checkpoint(tmp_path / "run").meta["step"] == step


def save_edited(graphs, path, edit):
    """Save graphs whose node features ``edit(index, x)`` changed (past the contract check a builder makes)."""
    dataset = GraphDataset.from_graphs(graphs)
    for i, record in enumerate(dataset.records):
        record["x"] = edit(i, dataset[i].x.clone())
    dataset.save(path)
    return path


def test_training_error_and_nan_features_are_one_line(run_inputs, tmp_path, small_patch_graphs):
    graphs, config = run_inputs
    # Finite features whose squared error overflows float32: every loss is infinite, so training gives up.
    # (Raw inputs: standardisation would scale 1e30 back to finite values.)
    huge = save_edited(small_patch_graphs, tmp_path / "huge.pt", lambda i, x: torch.full_like(x, 1e30))
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps({**TINY, "model": {**TINY["model"], "standardise_inputs": False}}))
    line = one_line_error(hmgdm("pretrain", huge, "--out", tmp_path / "r1", "--config", raw, "--steps", "20"), status=1)
    assert "consecutive steps had a non-finite" in line

    def poison(i, x):
        if i == 2:
            x[3, 5] = float("nan")
        return x

    nan = save_edited(small_patch_graphs, tmp_path / "nan.pt", poison)
    line = one_line_error(hmgdm("pretrain", nan, "--out", tmp_path / "r2", "--config", config, "--steps", "1"))
    assert re.search(r"graph 2 (\(group \w+\) )?has NaN or infinite values in x", line), line
    hmgdm("pretrain", graphs, "--out", tmp_path / "ok", "--config", config, "--steps", "1", check_status=0)
    line = one_line_error(hmgdm("embed", tmp_path / "ok", nan, "--out", tmp_path / "e.npz"))
    assert re.search(r"graph 2 (\(group \w+\) )?has NaN or infinite values in x", line), line
    assert not (tmp_path / "e.npz").exists()
    line = one_line_error(hmgdm("embed", tmp_path / "ok", graphs, "--out", tmp_path / "e.npz", "--batch-size", "0"))
    assert "batch_size must be an integer ≥ 1" in line
