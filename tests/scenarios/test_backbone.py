"""scenarios/backbone.py and `sflsim pretrain --recipe`: bad input is refused before any work."""
import pytest

from scenarios.backbone import save_cache_file, sidecar_path
from scenarios.cli import main


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--recipe", "nope", "--out", "{d}/w.safetensors"], "recipe must be one of"),
        (["--recipe", "default"], "--out is required"),
        (["--recipe", "default", "--out", "{d}/w.pt"], "--out must end in .safetensors"),
        (["--recipe", "default", "--out", "{d}/no/such/w.safetensors"], "--out folder must exist"),
        (["--recipe", "default", "--out", "{d}/w.safetensors", "--epochs", "0"], "epochs must be > 0"),
    ],
)
def test_bad_recipe_input_is_one_line_exit_2_nothing_written(tmp_path, capsys, argv, message):
    argv = [a.replace("{d}", str(tmp_path)) for a in argv]
    assert main(["pretrain", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert list(tmp_path.iterdir()) == []


def test_cache_file_is_written_whole_with_its_folder(tmp_path):
    path = tmp_path / "cache" / "backbone-x.pt"
    save_cache_file(path, b"abc")
    assert path.read_bytes() == b"abc" and [p.name for p in path.parent.iterdir()] == ["backbone-x.pt"]
    assert sidecar_path(tmp_path / "w.safetensors") == tmp_path / "w.json"
