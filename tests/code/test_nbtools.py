"""The learner-notebook generator and the drift check."""

from __future__ import annotations

import nbformat
import pytest

from reference import nbtools
from reference.nbtools import MarkerError, make_learner, strip_solution


def test_region_becomes_stub_with_hint_and_indentation():
    src = "def f(x):\n    ### BEGIN SOLUTION\n    # HINT: double it\n    return 2 * x\n    ### END SOLUTION\n"
    out, had, top = strip_solution(src)
    assert had and not top
    assert out == 'def f(x):\n    raise NotImplementedError("double it")'


def test_top_level_region_is_flagged():
    out, had, top = strip_solution("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\nprint(x)")
    assert had and top and out.startswith("raise NotImplementedError(")


@pytest.mark.parametrize(
    "src",
    ["### BEGIN SOLUTION\nx=1", "x=1\n### END SOLUTION",
     "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION",
     "x = 1  ### BEGIN SOLUTION\n### END SOLUTION"],
)
def test_malformed_markers_fail_loudly(src):
    with pytest.raises(MarkerError):
        strip_solution(src, "nb.ipynb, cell 3")


def test_learner_tags_outputs_and_solution_only_cells():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION"),
        nbformat.v4.new_code_cell("check(answer == 42)", metadata={"tags": ["exercise-check"]}),
        nbformat.v4.new_code_cell("print('only for instructors')", metadata={"tags": ["solution-only"]}),
        nbformat.v4.new_code_cell("print('shared')"),
    ]
    nb.cells[3].outputs = [nbformat.v4.new_output("stream", text="shared\n")]
    nb.cells[3].execution_count = 7
    learner = make_learner(nb)
    assert len(learner.cells) == 3
    assert "raises-exception" in learner.cells[0].metadata["tags"]
    assert "raises-exception" in learner.cells[1].metadata["tags"]
    assert learner.cells[2].outputs == [] and learner.cells[2].execution_count is None
    assert nb.cells[3].outputs, "the solution notebook object must not be modified"


def test_drift_is_detected(tmp_path):
    (tmp_path / "solutions" / "00").mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION")]
    (tmp_path / "solutions" / "00" / "a.ipynb").write_text(nbtools.render(nb))
    assert any("missing" in p for p in nbtools.drift(tmp_path))
    nbtools.build(tmp_path)
    assert nbtools.drift(tmp_path) == []
    learner = tmp_path / "notebooks" / "00" / "a.ipynb"
    learner.write_text(learner.read_text().replace("NotImplementedError", "ValueError"))
    assert any("drifted" in p for p in nbtools.drift(tmp_path))
    (tmp_path / "notebooks" / "00" / "orphan.ipynb").write_text(nbtools.render(nb))
    assert any("orphan" in p for p in nbtools.drift(tmp_path))


def test_repository_notebooks_are_in_sync():
    assert nbtools.drift() == [], "run `make notebooks` and commit the result"
