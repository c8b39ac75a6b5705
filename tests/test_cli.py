"""The hmgdm command line: info, demo and error handling."""

import json
import shutil
import subprocess

import imageio.v3 as iio

from hmgdm_core.cli import main


def test_info_text_and_json(capsys):
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    assert "torch" in text and "torch-geometric" in text and "logical cores" in text and "cuda" in text
    assert main(["info", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["packages"]["torch"].startswith("2.")
    assert report["cuda"]["available"] in (True, False)
    assert report["cpu"]["logical_cores"] >= 1


def test_console_script_is_installed():
    exe = shutil.which("hmgdm")
    assert exe is not None
    result = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("hmgdm ")


def test_demo_reports_and_writes_thumbnail(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "level 0      2967 x 2220 px" in out
    assert "0.4990 at level 0" in out
    assert "tissue" in out and "CC0" in out
    thumb = iio.imread(tmp_path / "thumbnail.png")
    assert thumb.shape == (1024, 766, 3)
    # The tissue outline is drawn in pure green.
    assert ((thumb == (0, 200, 0)).all(axis=-1)).sum() > 100


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--slide", str(tmp_path / "missing.svs")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hmgdm demo: error:") and "no such file" in err
