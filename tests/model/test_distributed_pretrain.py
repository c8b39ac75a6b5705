import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from model_graphs import TINY

from hmgdm_core.train import PretrainConfig, StepDone, TrainConfig, pretrain

WORKER = """
import json, sys
sys.path.insert(0, {tests!r})
from model_graphs import same_shape_graphs
from hmgdm_core.train import PretrainConfig, StepDone, pretrain
import torch.distributed as dist
config = PretrainConfig.from_json({config!r})
graphs = same_shape_graphs(8)
losses = [[e.loss, e.node, e.edge, e.kl] for e in pretrain(graphs, config, {out!r}) if isinstance(e, StepDone)]
with open({out!r} + f"/rank{{dist.get_rank()}}.json", "w") as handle:
    json.dump(losses, handle)
"""


def test_two_cpu_processes_match_one_process_on_the_same_global_batch(tmp_path):
    from model_graphs import same_shape_graphs

    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.fail("torchrun is missing from the environment (it ships with torch)")
    config = PretrainConfig(model=TINY, train=TrainConfig(batch_size=4, max_steps=6, lr=1e-3, device="cpu"))
    graphs = same_shape_graphs(8)
    single = [
        [e.loss, e.node, e.edge, e.kl] for e in pretrain(graphs, config, tmp_path / "one") if isinstance(e, StepDone)
    ]
    script = tmp_path / "worker.py"
    out = tmp_path / "ddp"
    out.mkdir()
    script.write_text(WORKER.format(tests=str(Path(__file__).parent), config=config.to_json(), out=str(out)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [torchrun, "--standalone", "--nproc-per-node", "2", str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    # Entry counts are summed over processes, so the parts add up to the global batch means.
    for step, (one, a, b) in enumerate(zip(single, *ranks, strict=True)):
        for part in range(4):
            assert a[part] == b[part] == pytest.approx(one[part], rel=1e-3), (step, part)
    # Rank 0 alone wrote (a --steps run saves every tenth of its steps; the last keep_last = 3 are kept) and
    # released the folder's lock.
    assert sorted(p.name for p in out.glob("checkpoint-*.pt")) == [f"checkpoint-{s:08d}.pt" for s in range(4, 7)]
    assert not (out / ".hmgdm-run.lock").exists()
