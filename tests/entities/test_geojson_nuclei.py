import json

import numpy as np
import pytest

from hmgdm_core.entities import nuclei_from_geojson
from hmgdm_core.errors import InputError
from hmgdm_core.io import Region


def _square(x0, y0, side):
    return [[[x0, y0], [x0 + side, y0], [x0 + side, y0 + side], [x0, y0 + side], [x0, y0]]]


def test_modern_qupath_cells_use_their_nucleus_outline(qupath_dir):
    region = Region(0, 0, 2048, 2048, base_mpp=0.5)
    rgb = np.full((2048, 2048, 3), 200, np.uint8)
    ents = nuclei_from_geojson(qupath_dir / "luna_test_cell_detections.geojson", rgb, region)
    assert ents.n == 2
    areas = sorted(ents.table["area_px"].tolist())
    assert areas[1] == pytest.approx(512 * 512, rel=0.01)  # the 512-px square cell
    assert areas[0] == pytest.approx(512 * 512 / 2, rel=0.02)  # the triangle


def test_legacy_cells_are_read_and_annotations_skipped(qupath_dir):
    legacy = json.loads((qupath_dir / "luna_test_object_classification.geojson").read_text(encoding="utf-8"))
    ring = np.asarray(legacy[0]["nucleusGeometry"]["coordinates"][0])
    x0, y0 = ring.min(axis=0).astype(int) - 10
    region = Region(int(y0), int(x0), 100, 100, base_mpp=0.25)
    ents = nuclei_from_geojson(legacy, np.full((100, 100, 3), 128, np.uint8), region)
    assert ents.n == 1 and ents.table["area_px"][0] > 100
    annotations = qupath_dir / "napari-geojson_qp_all_shapes.geojson"
    assert nuclei_from_geojson(annotations, np.zeros((700, 700, 3), np.uint8), Region(0, 0, 700, 700, 0.25)).n == 0


def test_outlines_map_through_the_region_and_holes_stay_empty():
    collection = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": _square(1040, 2040, 40)},
                "properties": {"objectType": "detection"},
            },
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": _square(1100, 2100, 40) + _square(1110, 2110, 10)[:1]},
                "properties": {"objectType": "detection"},
            },
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": _square(5000, 5000, 40)},
                "properties": {"objectType": "detection"},
            },  # outside the region
        ],
    }
    region = Region(2000, 1000, 200, 200, base_mpp=0.25, mpp=0.5)  # read at half resolution: 100 × 100
    ents = nuclei_from_geojson(collection, np.full((100, 100, 3), 90, np.uint8), region)
    assert ents.n == 2
    yx = region.to_level0(ents.centroids)
    assert np.allclose(yx[0], [2060, 1060], atol=1.5)
    assert ents.table["area_px"][0] == pytest.approx(20 * 20, rel=0.15)
    assert ents.table["area_px"][1] == pytest.approx(20 * 20 - 5 * 5, rel=0.15)  # the hole is not nucleus
    assert ents.labels[57, 57] == 0  # inside the hole: level-0 (y, x) ≈ (2115, 1115)


def test_bad_geojson_is_refused(tmp_path):
    with pytest.raises(InputError, match="No GeoJSON"):
        nuclei_from_geojson(tmp_path / "missing.geojson", np.zeros((4, 4, 3), np.uint8), Region(0, 0, 4, 4, 1.0))
    (tmp_path / "bad.geojson").write_text("{not json")
    with pytest.raises(InputError, match="not a JSON"):
        nuclei_from_geojson(tmp_path / "bad.geojson", np.zeros((4, 4, 3), np.uint8), Region(0, 0, 4, 4, 1.0))
    with pytest.raises(InputError, match="FeatureCollection"):
        nuclei_from_geojson({"type": "Point"}, np.zeros((4, 4, 3), np.uint8), Region(0, 0, 4, 4, 1.0))
