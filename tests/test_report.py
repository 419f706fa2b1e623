import base64
import re

from ganforge.artifacts.report import build_report
from ganforge.cli.main import main
from ganforge.train import build_run

from .conftest import tiny_config


def test_report_is_one_self_contained_page(tmp_path):
    cfg = tiny_config("gan", "builtin:ring8", steps=20, log={"sample_every": 10, "log_every": 2})
    trainer = build_run(cfg, tmp_path)
    trainer.fit()
    with open(tmp_path / "log.jsonl", "a") as f:
        f.write('{"step": 21, "d/lo')  # a line cut short by a crash is tolerated
    path = build_report(tmp_path)
    page = path.read_text()
    assert page.startswith("<!doctype html>") and "src=\"http" not in page and "src='http" not in page
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert len(images) >= 5 + 3  # curves + grids at steps 10, 20 and the final one
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    assert "summary" in page and "step_00000010" in page and "last logged step 20 of 20" in page


def test_report_cli_error_on_a_non_run(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err
