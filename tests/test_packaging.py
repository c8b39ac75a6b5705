"""Packaging: the core stays GUI-free, the npe2 manifest is valid and found, the wheel is complete."""

import os
import subprocess
import sys
import zipfile
from importlib import import_module
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "src" / "napari_hmgdm" / "napari.yaml"
GUI_MODULES = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "vispy", "superqt")


def test_core_imports_no_gui():
    code = (
        "import pkgutil, importlib, sys, hmgdm_core\n"
        "for m in pkgutil.walk_packages(hmgdm_core.__path__, 'hmgdm_core.'):\n"
        "    importlib.import_module(m.name)\n"
        f"bad = sorted(n for n in sys.modules if n.split('.')[0] in {GUI_MODULES!r})\n"
        "print(len([n for n in sys.modules if n.startswith('hmgdm_core')]), bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split(" ", 1)
    assert int(out[0]) > 5  # really imported the package tree
    assert out[1].strip() == "[]", f"hmgdm_core imported GUI modules: {out[1]}"


def test_root_manifest_is_the_package_manifest():
    root = REPO / "napari.yaml"
    assert root.is_symlink() and root.resolve() == MANIFEST.resolve()


def test_every_python_name_imports():
    manifest = yaml.safe_load(MANIFEST.read_text())
    names = [c["python_name"] for c in manifest["contributions"]["commands"]]
    assert names
    for name in names:
        module, attr = name.split(":")
        assert callable(getattr(import_module(module), attr)), name


def _npe2(*args):
    exe = Path(sys.executable).with_name("npe2")
    return subprocess.run([str(exe), *args], capture_output=True, text=True)


def test_npe2_validate_and_list():
    result = _npe2("validate", "napari-hmgdm")
    assert result.returncode == 0 and "valid" in result.stdout, result.stdout + result.stderr
    listing = _npe2("list", "--format", "json")
    assert listing.returncode == 0, listing.stderr
    assert '"napari-hmgdm"' in listing.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
        check=True, capture_output=True,
    )
    (path,) = out.glob("napari_hmgdm-*.whl")
    return path


def test_wheel_contents(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "napari_hmgdm/napari.yaml" in names
    assert "hmgdm_core/data/CMU-1-Small-Region.svs" in names
    assert "hmgdm_core/data/CMU-1-Small-Region.README.md" in names
    from hmgdm_core.pretrained import list_pretrained

    assert list_pretrained()
    for name in list_pretrained():  # the bundled models and their cards ship as package data
        for suffix in (".pt", ".json"):
            assert f"hmgdm_core/pretrained/models/{name}{suffix}" in names
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "napari-hmgdm = napari_hmgdm:napari.yaml" in entry_points
    assert "hmgdm = hmgdm_core.cli:main" in entry_points
    assert not any("monuseg" in n.lower() for n in names)


def test_napari_discovers_the_plugin_from_the_wheel(wheel, tmp_path):
    """Install the wheel alone into a folder and let npe2 find it there, without the editable install."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    code = (
        "import sys; from npe2 import PluginManager\n"
        "pm = PluginManager(); pm.discover()\n"
        "mf = pm.get_manifest('napari-hmgdm')\n"
        "import napari_hmgdm, hmgdm_core.sample as s\n"
        "print(mf.display_name, '|', napari_hmgdm.__file__, '|', s.sample_slide_path().is_file())\n"
    )
    site_packages = next(p for p in sys.path if p.endswith("site-packages"))
    # -S skips site processing, so the editable install's path hook is inactive; its dependencies
    # still come from site-packages, after the wheel's folder.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), site_packages])}
    result = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    name, module_file, has_sample = (part.strip() for part in result.stdout.strip().splitlines()[-1].split("|"))
    assert name == "H-MGDM"
    assert Path(module_file).is_relative_to(target)
    assert has_sample == "True"


def test_readme_has_the_two_setup_commands_and_ci_runs_the_second():
    readme = (REPO / "README.md").read_text()
    blocks = {}
    for marker in ("demo-command", "test-command"):
        after = readme.split(f"<!-- {marker} -->", 1)[1]
        blocks[marker] = after.split("```bash\n", 1)[1].split("```", 1)[0].strip()
    assert blocks["demo-command"] == 'pip install -c constraints.txt -e ".[gui]" && hmgdm demo'
    assert blocks["test-command"].startswith("pip install -c constraints.txt -e") and "pytest" in blocks["test-command"]
    ci = (REPO / ".ci" / "run").read_text()
    assert "<!-- test-command -->" in ci and "xvfb" in ci and "OMP_NUM_THREADS=1" in ci
    assert "QT_QPA_PLATFORM" not in ci
    assert (REPO / "constraints.txt").read_text().count("torch==2.13.0") == 1
