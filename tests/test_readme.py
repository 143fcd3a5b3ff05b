"""The README's Python API example runs as written, from any folder (it names no files)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    section = (ROOT / "README.md").read_text().split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_python_api_example_runs_from_any_folder(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # not the repository root: an installed package has no assets path there
    namespace: dict = {}
    exec(compile(readme_example(), "README.md", "exec"), namespace)
    assert namespace["tech"].ber(0.834) == pytest.approx(0.01, rel=0.05)   # the README's comment
    assert namespace["tech"].energy_per_access(0.834) == pytest.approx(0.696, abs=0.001)
    assert namespace["logits"].shape == (200, 10)
    assert namespace["report"]["ber"] == pytest.approx(namespace["point"].ber)
    result = namespace["result"]
    assert result["with_nf"] is not None and len(result["without_nf"]["pa_per_chip"]) == 2
    assert not any(tmp_path.iterdir())   # and it writes nothing there


def test_every_name_in_the_package_all_loads():
    import neuralfuse
    import sramsim

    for package in (neuralfuse, sramsim):
        for name in package.__all__:
            assert getattr(package, name) is not None, f"{package.__name__}.{name}"
        with pytest.raises(AttributeError, match="no attribute 'nope'"):
            package.nope  # noqa: B018
    assert os.path.basename(neuralfuse.evaluate.__code__.co_filename) == "evaluation.py"
