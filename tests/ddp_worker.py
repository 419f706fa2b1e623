"""Run under torchrun by tests/test_distributed.py: train a tiny run in K processes, then every rank saves
the state it holds (weights, buffers, EMA, optimizer state) so the test can compare the ranks.

    python -m torch.distributed.run --standalone --nproc_per_node=2 tests/ddp_worker.py CONFIG.json OUT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.conftest, run as a script

from ganforge.config import from_dict  # noqa: E402
from ganforge.train import build_run, distributed  # noqa: E402
from tests.conftest import training_state  # noqa: E402


def main() -> None:
    cfg_path, out = Path(sys.argv[1]), Path(sys.argv[2])
    info = distributed.init_from_env("cpu")
    torch.set_num_threads(1)
    cfg = from_dict(json.loads(cfg_path.read_text()))
    extra = []
    if cfg.eval.every > 0:  # as `ganforge train` sets it up
        from ganforge.data import load_data
        from ganforge.metrics.callback import EvalCallback

        extra.append(EvalCallback(cfg.eval, load_data(cfg.data.source), seed=cfg.train.seed))
    trainer = build_run(cfg, out, extra_callbacks=extra)
    trainer.fit()
    _ = trainer.generator  # the EMA copy as this rank would sample it (rank 0 re-estimated its BatchNorm statistics)
    state = {k: v.detach().clone() for k, v in training_state(trainer).items()}
    torch.save({"state": state, "logs": trainer.last_logs, "step": trainer.step,
                "eval": extra[0].history if extra else None,
                "local_batch": trainer.loader.local_batch}, out / f"rank{info.rank}.pt")
    distributed.shutdown()


if __name__ == "__main__":
    main()
