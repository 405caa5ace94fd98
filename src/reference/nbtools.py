"""Build learner notebooks from their solutions: one source of truth per lesson.

Authors write ``solutions/<phase>/<NN_topic>.ipynb`` with nbgrader-style markers::

    def tokens_per_second(n, seconds):
        ### BEGIN SOLUTION
        # HINT: divide, and guard against zero seconds
        return n / seconds if seconds else 0.0
        ### END SOLUTION

The generator writes ``notebooks/<phase>/<NN_topic>.ipynb`` where each marked region
becomes ``raise NotImplementedError("<hint>")`` at the region's indentation. It also
sets nbval tags so the learner notebook still runs in CI:

* a cell whose stub raises at top level gets ``raises-exception``;
* a cell the author tagged ``exercise-check`` (a check that calls learner code)
  gets ``raises-exception`` in the learner version only;
* a cell tagged ``solution-only`` is dropped from the learner version.

Outputs and execution counts are stripped from both versions. Malformed markers
(an END without BEGIN, a BEGIN without END, nesting) stop the build with the
notebook, cell and line named.

Usage::

    python -m reference.nbtools build    # regenerate notebooks/ from solutions/
    python -m reference.nbtools check    # exit 1 if notebooks/ drifted from solutions/
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
HINT_RE = re.compile(r"^\s*#\s*HINT:\s*(?P<hint>.+?)\s*$")
DEFAULT_HINT = "this is your exercise: replace this line with your code"
REPO = Path(__file__).resolve().parents[2]


class MarkerError(ValueError):
    """A solution marker is malformed; the message names notebook, cell and line."""


def strip_solution(source: str, where: str = "<cell>") -> tuple[str, bool, bool]:
    """Replace every marked solution region in one cell's source with a stub.

    Args:
        source: the cell source.
        where: a label used in error messages (notebook path and cell index).

    Returns:
        ``(new_source, had_solution, raises_at_top_level)``.

    Example:
        >>> strip_solution("x = 1\\n### BEGIN SOLUTION\\nx = 2\\n### END SOLUTION")[0]
        'x = 1\\nraise NotImplementedError("this is your exercise: replace this line with your code")'
    """
    out: list[str] = []
    inside = False
    indent = ""
    hint = ""
    had = False
    top_level = False
    for lineno, line in enumerate(source.splitlines(), start=1):
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise MarkerError(f"{where}, line {lineno}: nested '{BEGIN}'")
            inside, had, hint = True, True, ""
            indent = line[: len(line) - len(line.lstrip())]
            continue
        if stripped == END:
            if not inside:
                raise MarkerError(f"{where}, line {lineno}: '{END}' without '{BEGIN}'")
            inside = False
            message = (hint or DEFAULT_HINT).replace("\\", "\\\\").replace('"', '\\"')
            out.append(f'{indent}raise NotImplementedError("{message}")')
            top_level = top_level or indent == ""
            continue
        if BEGIN.lower() in stripped.lower() or END.lower() in stripped.lower():
            raise MarkerError(f"{where}, line {lineno}: marker must stand alone: {stripped!r}")
        if inside:
            m = HINT_RE.match(line)
            if m and not hint:
                hint = m.group("hint")
            continue
        out.append(line)
    if inside:
        raise MarkerError(f"{where}: '{BEGIN}' without '{END}'")
    return "\n".join(out), had, top_level


KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def _clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Strip outputs and editor debris; give every notebook the same kernel metadata."""
    nb.metadata = nbformat.from_dict({"kernelspec": KERNELSPEC, "language_info": {"name": "python"}})
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
        cell.metadata.pop("collapsed", None)
    return nb


def make_learner(solution: nbformat.NotebookNode, where: str = "<notebook>") -> nbformat.NotebookNode:
    """Return the learner version of a solution notebook (the input is not modified)."""
    nb = _clean(copy.deepcopy(solution))
    cells = []
    for index, cell in enumerate(nb.cells):
        tags = list(cell.metadata.get("tags", []))
        if "solution-only" in tags:
            continue
        if cell.cell_type == "code":
            src, had, top = strip_solution(cell.source, f"{where}, cell {index}")
            cell.source = src
            if (had and top) or "exercise-check" in tags:
                if "raises-exception" not in tags:
                    tags.append("raises-exception")
            if tags:
                cell.metadata["tags"] = tags
        cells.append(cell)
    nb.cells = cells
    return nb


def _pairs(root: Path) -> list[tuple[Path, Path]]:
    sol_root = root / "solutions"
    return [
        (path, root / "notebooks" / path.relative_to(sol_root))
        for path in sorted(sol_root.rglob("*.ipynb"))
        if ".ipynb_checkpoints" not in path.parts
    ]


def render(nb: nbformat.NotebookNode) -> str:
    """Serialise a notebook the way the repository stores it (stable, 1-space indent)."""
    return nbformat.writes(nb, version=4) + "\n"


def build(root: Path = REPO) -> list[Path]:
    """Regenerate every learner notebook and re-save every solution cleaned."""
    written = []
    for sol_path, learner_path in _pairs(root):
        sol = nbformat.read(sol_path, as_version=4)
        learner = make_learner(sol, str(sol_path.relative_to(root)))
        sol_text = render(_clean(sol))
        if sol_path.read_text(encoding="utf-8") != sol_text:
            sol_path.write_text(sol_text, encoding="utf-8")
        learner_path.parent.mkdir(parents=True, exist_ok=True)
        learner_path.write_text(render(learner), encoding="utf-8")
        written.append(learner_path)
    return written


def drift(root: Path = REPO) -> list[str]:
    """List problems: learner notebooks that differ from, or lack, their solution."""
    problems = []
    pairs = _pairs(root)
    expected = {learner for _, learner in pairs}
    for sol_path, learner_path in pairs:
        rel = sol_path.relative_to(root)
        sol = nbformat.read(sol_path, as_version=4)
        if sol_path.read_text(encoding="utf-8") != render(_clean(copy.deepcopy(sol))):
            problems.append(f"{rel}: has outputs or is not normalised (run make notebooks)")
        want = render(make_learner(sol, str(rel)))
        if not learner_path.exists():
            problems.append(f"{learner_path.relative_to(root)}: missing (run make notebooks)")
        elif learner_path.read_text(encoding="utf-8") != want:
            problems.append(f"{learner_path.relative_to(root)}: drifted from {rel} (run make notebooks)")
    for path in sorted((root / "notebooks").rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        if path not in expected:
            problems.append(f"{path.relative_to(root)}: has no solution in solutions/")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reference.nbtools", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["build", "check"])
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            for path in build():
                print(f"wrote {path.relative_to(REPO)}")
            return 0
        problems = drift()
    except MarkerError as exc:
        print(f"marker error: {exc}", file=sys.stderr)
        return 2
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
