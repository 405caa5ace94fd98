"""Set the ✅/🚧 status of every notebook row in ROADMAP.md from what exists in solutions/.

Usage: python tools/roadmap_status.py   (rewrites ROADMAP.md in place)
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROW = re.compile(r"^(\|.*`(?P<nb>\d\d_[a-z_]+/\d\d_[a-z0-9_]+)`.*\|\s*)(✅|🚧)(\s*\|\s*)$")


def main() -> None:
    path = ROOT / "ROADMAP.md"
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = ROW.match(line)
        if m:
            exists = (ROOT / "solutions" / f"{m.group('nb')}.ipynb").is_file()
            line = f"{m.group(1)}{'✅' if exists else '🚧'}{m.group(4)}"
        lines.append(line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
