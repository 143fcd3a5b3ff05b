"""Every output path of both command lines is checked when the command line is parsed: a missing
folder is a one-line usage error (exit 2) before any work, never a traceback after it."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from characterization.atomic import check_output_path
from neuralfuse.cli import main as neuralfuse_main
from sramsim.cli import main as sramsim_main

# (command line, option that names the output); "IN" is an existing file, "OUT" a path in a missing folder.
COMMANDS = [
    (sramsim_main, ["curves", "--csv", "OUT"], "--csv"),
    (sramsim_main, ["curves", "--plot", "OUT"], "--plot"),
    (sramsim_main, ["faultmap", "--voltage", "0.83", "--chip", "3", "--arrays", "1", "-o", "OUT"], "-o"),
    (sramsim_main, ["accesses", "--model", "resnet18", "--csv", "OUT"], "--csv"),
    (neuralfuse_main, ["train-base", "-o", "OUT"], "-o"),
    (neuralfuse_main, ["train", "--base", "IN", "--generator", "UNetS", "--ber", "0.01",
                       "--dataset", "default", "-o", "OUT"], "-o"),
    (neuralfuse_main, ["grid", "IN", "-o", "OUT"], "-o"),
    (neuralfuse_main, ["evaluate", "--base", "IN", "--ber", "0.01", "--json", "OUT"], "--json"),
    (neuralfuse_main, ["compare", "IN", "--csv", "OUT"], "--csv"),
    (neuralfuse_main, ["sweep", "--base", "IN", "--voltages", "0.9,1.0", "-o", "OUT"], "-o"),
    (neuralfuse_main, ["strategies", "IN", "-o", "OUT"], "-o"),
    (neuralfuse_main, ["demo", "-o", "OUT"], "-o"),
    (neuralfuse_main, ["show", "--run", "RUN", "-o", "OUT"], "-o"),
]


@pytest.mark.parametrize("main, args, option", COMMANDS, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_an_output_in_a_missing_folder_is_refused_before_any_work(tmp_path, main, args, option):
    existing, run, out = tmp_path / "in.json", tmp_path / "run", tmp_path / "missing" / "out.x"
    existing.write_text("{}")
    run.mkdir()
    args = [{"IN": str(existing), "OUT": str(out), "RUN": str(run)}.get(arg, arg) for arg in args]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    error = result.output.strip().splitlines()[-1]
    assert error.startswith(f"Error: Invalid value for '{option}") and "does not exist" in error
    assert str(tmp_path / "missing") in error and "Traceback" not in result.output
    assert not (tmp_path / "missing").exists()


def test_the_check_says_what_is_wrong(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="folder': it is a folder, not a file"):
        check_output_path(tmp_path / "folder")
    with pytest.raises(ValueError, match="file': it is a file, not a folder"):
        check_output_path(tmp_path / "file", folder=True)
    with pytest.raises(ValueError, match="folder '.*missing' does not exist"):
        check_output_path(tmp_path / "missing" / "x.csv")
    assert check_output_path(tmp_path / "new.csv") == tmp_path / "new.csv"
    assert check_output_path(tmp_path / "file") == tmp_path / "file"   # an existing file is replaced
