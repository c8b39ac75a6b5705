"""The documentation site: it builds without warnings, and what it shows exists and runs.

The site is built once per session with ``mkdocs build --strict`` in a subprocess, into a temporary folder.
"""

import ast
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
GUIDE = DOCS / "guide.md"

# One key public object per API page: its entry must be rendered (an anchor with its full path).
API_ENTRIES = {
    "api/io.md": ["hmgdm_core.io.open_slide", "hmgdm_core.io.Slide.read", "hmgdm_core.io.Region"],
    "api/entities.md": ["hmgdm_core.entities.nuclei_entities", "hmgdm_core.tissue.tissue_mask_from_rgb"],
    "api/graph.md": ["hmgdm_core.graph.build_graph", "hmgdm_core.graph.dataset_from_region"],
    "api/model.md": ["hmgdm_core.masking.sample_mask", "hmgdm_core.diffusion.NoiseSchedule", "hmgdm_core.model.HMGDM"],
    "api/train.md": ["hmgdm_core.train.pretrain", "hmgdm_core.train.PretrainConfig", "hmgdm_core.train.StepDone"],
    "api/embed.md": ["hmgdm_core.embed.embed_dataset", "hmgdm_core.embed.reconstruct"],
    "api/downstream.md": ["hmgdm_core.downstream.classify_embeddings", "hmgdm_core.downstream.survival.survival_cv"],
    "api/overlays.md": ["hmgdm_core.overlays.cluster_patches", "hmgdm_core.overlays.MaskSchedule"],
    "api/qupath.md": ["hmgdm_core.io.qupath.read_qupath", "hmgdm_core.io.qupath.write_qupath"],
    "api/batch.md": ["hmgdm_core.batch.run_pipeline", "hmgdm_core.batch.build_graphs"],
    "api/pretrained.md": ["hmgdm_core.pretrained.load_pretrained", "hmgdm_core.pretrained.export_pretrained"],
}

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
RUNNABLE = re.compile(r"<!-- runnable -->\n```python\n(.*?)^```", re.S | re.M)


def nav_pages(nav) -> list[str]:
    """Markdown paths of every page in a (nested) mkdocs nav."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in nav_pages(value)]
    return [page for item in nav for page in nav_pages(item)]


def built_page(site: Path, page: str) -> Path:
    """Where mkdocs (``use_directory_urls``) writes the HTML of a Markdown page."""
    stem = page.removesuffix(".md")
    return site / "index.html" if stem == "index" else site / stem / "index.html"


def code_blocks(language: str) -> list[tuple[Path, str]]:
    return [
        (path, match.group(2))
        for path in sorted(DOCS.glob("*.md"))
        for match in FENCE.finditer(path.read_text(encoding="utf-8"))
        if match.group(1) == language
    ]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"), "-d", str(out)],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    warnings = [line for line in log.splitlines() if "WARNING" in line]
    assert not warnings, "\n".join(warnings)
    return out


@pytest.fixture(scope="module")
def nav() -> list[str]:
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))
    return nav_pages(config["nav"])


def test_every_nav_page_is_built(site, nav):
    assert {"index.md", "tutorial.md", "guide.md", "method.md", "benchmarks.md", "representation.md"} <= set(nav)
    for page in nav:
        assert (DOCS / page).is_file(), page
        html = built_page(site, page).read_text(encoding="utf-8")
        assert "<h1" in html, page


def test_every_docs_page_is_in_the_nav(nav):
    pages = {str(path.relative_to(DOCS)) for path in DOCS.rglob("*.md")}
    assert pages == set(nav)


def test_api_pages_render_the_key_entries(site, nav):
    assert set(API_ENTRIES) <= set(nav)
    for page, identifiers in API_ENTRIES.items():
        html = built_page(site, page).read_text(encoding="utf-8")
        for identifier in identifiers:
            assert f'id="{identifier}"' in html, f"{identifier} missing from {page}"
        # The numpy sections are parsed, not shown as raw text.
        assert "Parameters\n----------" not in html, page
        # Sphinx roles became links and reST maths became MathJax (docs/mkdocs_hooks.py, docs/griffe_rst.py).
        for raw in (":func:", ":class:", ":meth:", ":mod:", ":math:", ".. math::"):
            assert raw not in html, f"{raw} left in {page}"


def test_api_entries_carry_their_docstrings(site):
    html = built_page(site, "api/train.md").read_text(encoding="utf-8")
    start = html.index('id="hmgdm_core.train.pretrain"')
    entry = html[start:start + 20000]
    assert "Pre-train H-MGDM on entity graphs" in entry
    assert "resume" in entry and "cancel" in entry  # the parameter table


def test_referenced_images_exist(site):
    sources = 0
    for path in DOCS.rglob("*.md"):
        for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)", path.read_text(encoding="utf-8")):
            assert (path.parent / target).is_file(), f"{path.name}: {target}"
            sources += 1
    assert sources >= 5  # the five screenshots
    for html_path in site.rglob("*.html"):
        for src in re.findall(r'<img[^>]+src="([^"]+)"', html_path.read_text(encoding="utf-8")):
            if not src.startswith(("http:", "https:", "data:")):
                assert (html_path.parent / src).resolve().is_file(), f"{html_path}: {src}"


def test_developer_scripts_are_not_published(site):
    assert not list(site.rglob("make_screenshots*"))
    assert not list(site.rglob("mkdocs_hooks*"))
    assert not list(site.rglob("griffe_rst*"))


def test_guide_python_steps_are_short_and_import_real_names():
    blocks = [code for path, code in code_blocks("python") if path == GUIDE]
    assert len(blocks) >= 7
    for code in blocks:
        lines = [line for line in code.splitlines() if line.strip()]
        assert len(lines) <= 10, code
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.ImportFrom):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name), f"{node.module}.{alias.name}"


def test_guide_runnable_steps_run(tmp_path):
    steps = RUNNABLE.findall(GUIDE.read_text(encoding="utf-8"))
    assert len(steps) >= 6
    script = tmp_path / "guide_steps.py"
    script.write_text("\n".join(steps), encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, env=env,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "step 3: loss" in result.stdout
    assert (tmp_path / "nuclei.geojson").is_file() and (tmp_path / "graphs.pt").is_file()


def test_documented_commands_exist():
    from hmgdm_core.cli import build_parser

    subparsers = next(a for a in build_parser()._actions if a.choices and isinstance(a.choices, dict)).choices
    seen = set()
    for path, code in code_blocks("bash"):
        for line in code.splitlines():
            match = re.search(r"\bhmgdm\)?\s+([a-z]+)", line)
            if match is None:
                continue
            command = match.group(1)
            assert command in subparsers, f"{path.name}: hmgdm {command}"
            known = subparsers[command]._option_string_actions
            for option in re.findall(r"(?<![\w-])--[a-z][a-z-]*", line[match.end():]):
                assert option in known, f"{path.name}: hmgdm {command} {option}"
            seen.add(command)
    assert {"graph", "pretrain", "embed", "export"} <= seen


def test_citation_cff_is_valid():
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors"):
        assert cff[key], key
    paper = cff["preferred-citation"]
    assert paper["type"] in {"conference-paper", "article"}
    assert paper["title"] == (
        "Dynamic Entity-Masked Graph Diffusion Model for Histopathological Image Representation Learning"
    )
    assert paper["year"] == 2025
    assert paper["authors"][0]["family-names"] == "Zhuang"
    for person in cff["authors"] + paper["authors"]:
        assert person.get("name") or person.get("family-names"), person
