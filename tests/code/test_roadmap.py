"""ROADMAP.md tells the truth about which notebooks exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(r"`(\d\d_[a-z_]+/\d\d_[a-z0-9_]+)`.*\|\s*(✅|🚧)\s*\|\s*$")


def test_every_notebook_is_on_the_roadmap_with_the_right_status():
    rows = {}
    for line in (ROOT / "ROADMAP.md").read_text(encoding="utf-8").splitlines():
        m = ROW.search(line)
        if m:
            rows[m.group(1)] = m.group(2)
    existing = {str(p.relative_to(ROOT / "solutions"))[:-6] for p in (ROOT / "solutions").rglob("*.ipynb")}
    assert existing <= set(rows), f"notebooks missing from ROADMAP.md: {sorted(existing - set(rows))}"
    wrong = {nb: mark for nb, mark in rows.items() if (mark == "✅") != (nb in existing)}
    assert not wrong, f"run `python tools/roadmap_status.py`: wrong status for {wrong}"
