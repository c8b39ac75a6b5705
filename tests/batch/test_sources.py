"""Slide lists: files, folders and CSVs of slides and regions, and clear errors for bad rows."""

from pathlib import Path

import pytest

from hmgdm_core.batch import SlideItem, slide_items
from hmgdm_core.errors import InputError


@pytest.fixture()
def slides(tmp_path: Path) -> Path:
    folder = tmp_path / "slides"
    folder.mkdir()
    for name in ("b.svs", "a.ome.tif", "c.tiff", "notes.txt", ".hidden.svs"):
        (folder / name).write_bytes(b"II*\x00")
    return folder


def test_folder_lists_readable_files_sorted(slides):
    items = slide_items([slides])
    assert [i.slide.name for i in items] == ["a.ome.tif", "b.svs", "c.tiff"]
    assert [i.name for i in items] == ["a", "b", "c"]
    assert all(i.box is None and i.group_id == i.name for i in items)


def test_csv_resolves_relative_paths_and_regions(slides, tmp_path):
    csv = tmp_path / "cohort.csv"
    csv.write_text(
        "slide,y,x,height,width,mpp,label,group\n"
        "slides/b.svs,0,10,256,512,,1,patientA\n"
        "slides/b.svs,300,0,128,128,0.25,2,\n"
        f"{slides / 'c.tiff'},,,,,,,\n"
    )
    items = slide_items([csv], mpp=0.5)
    assert items[0] == SlideItem(slides / "b.svs", (0, 10, 256, 512), 0.5, 1, "patientA")
    assert items[1].mpp == 0.25 and items[1].label == 2 and items[1].group_id == "b"
    assert items[2].box is None and items[2].label is None
    assert [i.name for i in items] == ["b_0_10_256_512", "b_300_0_128_128", "c"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("path\nslides/b.svs\n", "'slide' column"),
        ("slide,colour\nslides/b.svs,red\n", "unknown column"),
        ("slide,y,x\nslides/b.svs,0,0\n", "all of the columns"),
        ("slide,y,x,height,width\nslides/b.svs,0,0,10,\n", "line 2"),
        ("slide,label\nslides/b.svs,1\nslides/missing.svs,2\n", "line 3: slide"),
        ("slide,label\nslides/b.svs,tumour\n", "line 2: column 'label' must be an integer"),
        ("slide,mpp\nslides/b.svs,-1\n", "line 2: mpp"),
        ("slide,y,x,height,width\nslides/b.svs,0,0,0,5\n", "positive height"),
        ("slide\n", "lists no slide"),
        ("slide,y,x,height,width\nslides/b.svs,0,0,5,5\nslides/b.svs,0,0,5,5\n", "both write"),
    ],
)
def test_bad_csv_rows_name_the_line(slides, tmp_path, text, message):
    csv = tmp_path / "bad.csv"
    csv.write_text(text)
    with pytest.raises(InputError, match=message) as error:
        slide_items([csv])
    assert str(csv) in str(error.value) or "both write" in message


def test_missing_sources_and_empty_folders(tmp_path):
    with pytest.raises(InputError, match="no such slide"):
        slide_items([tmp_path / "nothing.svs"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no slide"):
        slide_items([tmp_path / "empty"])
