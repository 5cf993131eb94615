"""A rule's log gets timed progress lines, not progress-bar frames (issue 24, item 6)."""

from __future__ import annotations

from xlir.train.train import _stderr_is_terminal, progress_line


def test_a_progress_line_has_step_loss_lr_rate_and_time_left():
    line = progress_line({"step": 9, "kind": "mono"}, 100, 1.23456, 5e-5, 320, 10, 40.0)
    assert line == "step 10/100 (mono) loss 1.2346 lr 5.00e-05 8.0 items/s ETA 6m00s"
    last = progress_line({"step": 99, "kind": "cross"}, 100, 0.5, 0.0, 3200, 100, 400.0)
    assert last.endswith("8.0 items/s ETA 0m00s") and "\r" not in last


def test_no_bar_when_stderr_is_a_file(tmp_path, monkeypatch):
    import sys

    with open(tmp_path / "job.log", "w") as log:
        monkeypatch.setattr(sys, "stderr", log)
        assert not _stderr_is_terminal()
