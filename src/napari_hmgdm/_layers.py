"""Core objects to napari layer data (plain tuples; no viewer is touched here)."""

from __future__ import annotations

import dask.array as da
import numpy as np

from hmgdm_core.io import Slide

__all__ = [
    "HEATMAP_OPACITY",
    "attention_layer_data",
    "entity_labels_layer_data",
    "graph_layer_data",
    "heatmap_colormap",
    "heatmap_kwargs",
    "mask_schedule_labels_layer_data",
    "mask_schedule_layer_data",
    "patch_layer_data",
    "slide_layer_data",
]

# A level this large (pixels on its longer side) is not shown without coarser levels.
_MAX_UNPYRAMIDED = 4096


def _virtual_pyramid(level0: da.Array) -> list[da.Array]:
    """Lazily halved copies of a single-level image, so napari never loads level 0 whole."""
    levels = [level0]
    while max(levels[-1].shape[:2]) > _MAX_UNPYRAMIDED // 2:
        prev = levels[-1]
        half = da.coarsen(np.mean, prev.astype(np.float32), {0: 2, 1: 2}, trim_excess=True)
        levels.append(half.astype(np.uint8))
    return levels


def slide_layer_data(slide: Slide) -> tuple:
    """Layer data tuple showing ``slide`` as an RGB image in µm (or pixels when unknown).

    Parameters
    ----------
    slide : Slide
        An open slide; it must stay open while the layer exists.

    Returns
    -------
    tuple
        ``(data, kwargs, "image")`` where data is a list of lazy dask arrays, finest first,
        each ``(rows, cols, 3)`` uint8, and kwargs carry ``scale`` = level-0 µm/px.
    """
    levels = [lv.as_dask() for lv in slide.levels]
    if len(levels) == 1 and max(slide.shape) > _MAX_UNPYRAMIDED:
        levels = _virtual_pyramid(levels[0])
    scale = (slide.mpp, slide.mpp) if slide.mpp_known else (1.0, 1.0)
    kwargs = {
        "name": slide.path.name,
        "rgb": True,
        "multiscale": len(levels) > 1,
        "scale": scale,
        "units": ("µm", "µm") if slide.mpp_known else ("pixel", "pixel"),
        "metadata": {"hmgdm_path": str(slide.path), "hmgdm_mpp": slide.mpp if slide.mpp_known else None},
    }
    return (levels if len(levels) > 1 else levels[0], kwargs, "image")


def _region_translate(region: dict) -> tuple[float, float]:
    """World (µm) position of pixel (0, 0) of an image read for ``region``.

    Read pixel ``i`` covers level-0 rows ``y + i·d … y + (i+1)·d`` (``d`` = downsample), so its
    centre is level-0 row ``y + (i + 0.5)·d − 0.5``; the slide layer puts level-0 pixel centres
    at ``row · base_mpp``.
    """
    d = region["mpp"] / region["base_mpp"]
    return tuple((region[k] + 0.5 * d - 0.5) * region["base_mpp"] for k in ("y", "x"))


def entity_labels_layer_data(labels: np.ndarray, region: dict, kind: str) -> tuple:
    """Labels layer data for an entity label image read at ``region["mpp"]``.

    Parameters
    ----------
    labels : ndarray, shape (rows, cols), int
        0 background, entity ids from 1.
    region : dict
        :meth:`hmgdm_core.io.Region.to_dict` of the analysed box.
    kind : str
        ``'tissue'`` or ``'nuclei'``, for the layer name.

    Returns
    -------
    tuple
        ``(labels, kwargs, "labels")`` aligned with the slide layer (world units µm).
    """
    kwargs = {
        "name": f"{kind} entities",
        "scale": (region["mpp"], region["mpp"]),
        "translate": _region_translate(region),
        "opacity": 0.45,
        "units": ("µm", "µm"),
        "metadata": {"hmgdm_region": dict(region), "hmgdm_kind": kind},
    }
    return (labels, kwargs, "labels")


def graph_layer_data(graph, color_by: str | None = None) -> list[tuple]:
    """Points (nodes) and Vectors (edges) layer data for an entity graph.

    Parameters
    ----------
    graph : hmgdm_core.graph.EntityGraph
        ``pos`` in level-0 (y, x) pixels; measurements in ``node_meas`` / ``edge_meas``.
    color_by : str, optional
        A ``node_meas_names`` column that colours the nodes (viridis); default the first.

    Returns
    -------
    list of tuple
        ``[(points, kwargs, "points"), (vectors, kwargs, "vectors")]`` in world units (µm):
        point features carry ``entity_id`` and every node measurement; vector features carry
        ``pair``, ``source``, ``target`` and every edge measurement. Each undirected pair is
        drawn once.
    """
    import pandas as pd

    base_mpp = graph.region["base_mpp"]
    pos = graph.pos.numpy().astype(np.float64)
    names = list(graph.node_meas_names)
    features = pd.DataFrame(graph.node_meas.numpy(), columns=names)
    features.insert(0, "entity_id", graph.entity_id.numpy())
    color_by = color_by or (names[0] if names else None)
    size_px = max(3.0, 6.0 * graph.mpp / base_mpp)
    points_kwargs = {
        "name": f"{graph.kind} nodes",
        "scale": (base_mpp, base_mpp),
        "features": features,
        "size": size_px,
        "border_width": 0,
        "units": ("µm", "µm"),
        "metadata": {"hmgdm_region": dict(graph.region), "hmgdm_kind": graph.kind},
    }
    if color_by is not None and len(features):
        points_kwargs |= {"face_color": color_by, "face_colormap": "viridis"}

    edge_index = graph.edge_index.numpy()
    first = np.unique(graph.edge_pair.numpy(), return_index=True)[1]
    src, dst = edge_index[0, first], edge_index[1, first]
    vectors = np.stack([pos[src], pos[dst] - pos[src]], axis=1) if len(first) else np.zeros((0, 2, 2))
    edge_features = pd.DataFrame(graph.edge_meas.numpy()[first], columns=list(graph.edge_meas_names))
    edge_features.insert(0, "pair", np.arange(len(first)))
    edge_features.insert(1, "source", src)
    edge_features.insert(2, "target", dst)
    vectors_kwargs = {
        "name": f"{graph.kind} edges",
        "scale": (base_mpp, base_mpp),
        "features": edge_features,
        "edge_width": max(1.0, 1.5 * graph.mpp / base_mpp),
        "edge_color": "#ffd200",
        "vector_style": "line",
        "units": ("µm", "µm"),
        "metadata": {"hmgdm_region": dict(graph.region), "hmgdm_kind": graph.kind},
    }
    return [(pos, points_kwargs, "points"), (vectors, vectors_kwargs, "vectors")]


HEATMAP_OPACITY = 0.75
"""Layer opacity of heatmaps and error maps over the slide."""


def heatmap_colormap():
    """A colormap that fades in: transparent at the low end, then blue, teal and green, most opaque at the top.

    Low values leave the slide as it is; higher ones tint it in hues H&E does not have, at about the
    brightness of stained tissue, so the tissue stays readable under the map (an additive blend over a
    bright H&E slide turned it white, a yellow top made it glare).
    """
    from napari.utils.colormaps import Colormap

    colours = [[0.15, 0.3, 0.9, 0.0], [0.16, 0.43, 0.9, 0.5], [0.0, 0.67, 0.67, 0.65], [0.12, 0.63, 0.16, 0.8]]
    return Colormap(colors=colours, controls=[0.0, 0.4, 0.75, 1.0], name="hmgdm heat", interpolation="linear")


def heatmap_kwargs(contrast_limits: tuple[float, float]) -> dict:
    """Image-layer settings of a heatmap or error map over the slide (translucent, fading colormap).

    Parameters
    ----------
    contrast_limits : tuple of float
        Values mapped to the bottom and the top of the colormap (probability: ``(0, 1)``).
    """
    return {
        "colormap": heatmap_colormap(),
        "blending": "translucent",
        "opacity": HEATMAP_OPACITY,
        "contrast_limits": tuple(float(v) for v in contrast_limits),
    }


def patch_layer_data(raster: np.ndarray, region: dict, name: str, kind: str) -> tuple:
    """Layer data for a raster over a region's read pixels (a class map or a heatmap).

    Parameters
    ----------
    raster : ndarray, shape region read shape
        Integer labels (``kind='labels'``) or values (``kind='image'``).
    region : dict
        :meth:`hmgdm_core.io.Region.to_dict` of the region.
    name : str
        Layer name.
    kind : str
        ``'labels'`` or ``'image'``.

    Returns
    -------
    tuple
        ``(raster, kwargs, kind)`` aligned with the slide layer (world units µm).
    """
    kwargs = {
        "name": name,
        "scale": (region["mpp"], region["mpp"]),
        "translate": _region_translate(region),
        "units": ("µm", "µm"),
        "metadata": {"hmgdm_region": dict(region)},
    }
    if kind == "labels":
        kwargs["opacity"] = 0.5
    return (raster, kwargs, kind)


ROLE_NAMES = ("condition", "target", "hidden")
"""Names of the mask-role codes of :mod:`hmgdm_core.overlays.mask_schedule` (0, 1, 2)."""
ROLE_COLOURS = {"condition": "#00e5ff", "target": "#ff2bd6", "hidden": "#7f7f7f"}


def mask_schedule_layer_data(graph, schedule) -> list[tuple]:
    """Points and Vectors stacked over the recorded steps, for napari's dims slider (axis 0 = step).

    Parameters
    ----------
    graph : hmgdm_core.graph.EntityGraph
        The followed graph (``pos`` level-0 (y, x) px).
    schedule : hmgdm_core.overlays.MaskSchedule
        Its roles per recorded step (S steps, N nodes, E edges).

    Returns
    -------
    list of tuple
        ``[(points (S·N, 3), kwargs, "points"), (vectors (S·E, 2, 3), kwargs, "vectors")]``: coordinates
        ``(step index, y, x)``; features ``role``, ``step``, ``t`` and ``noise_std``; colours by role
        (condition cyan, target magenta, hidden grey).
    """
    import pandas as pd

    from hmgdm_core.overlays import edge_vectors

    base_mpp = graph.region["base_mpp"]
    s_count = len(schedule.steps)
    pos = graph.pos.numpy().astype(np.float64)
    n, e = len(pos), graph.edge_index.shape[1]
    step_of_node = np.repeat(np.arange(s_count), n)
    points = np.column_stack([step_of_node, np.tile(pos, (s_count, 1))])

    def features(role: np.ndarray, count: int) -> pd.DataFrame:
        index = np.repeat(np.arange(s_count), count)
        return pd.DataFrame(
            {
                "role": pd.Categorical(np.array(ROLE_NAMES)[role.reshape(-1)], categories=ROLE_NAMES),
                "step": schedule.steps[index],
                "t": schedule.t[index],
                "noise_std": schedule.noise_std[index],
            }
        )

    vec2 = edge_vectors(pos, graph.edge_index.numpy())
    vectors = np.zeros((s_count * e, 2, 3))
    vectors[:, 0, 0] = np.repeat(np.arange(s_count), e)
    vectors[:, :, 1:] = np.tile(vec2, (s_count, 1, 1))
    common = {
        "scale": (1.0, base_mpp, base_mpp),
        "units": ("", "µm", "µm"),
        "metadata": {"hmgdm_region": dict(graph.region)},
    }
    from matplotlib.colors import to_rgba_array

    # Explicit colours per element: a colour cycle would depend on which role appears first.
    palette = to_rgba_array([ROLE_COLOURS[name] for name in ROLE_NAMES])
    points_kwargs = common | {
        "name": "mask schedule nodes",
        "features": features(schedule.node_role, n),
        "size": 8.0,
        "border_width": 0,
        "face_color": palette[schedule.node_role.reshape(-1)],
    }
    vectors_kwargs = common | {
        "name": "mask schedule edges",
        "features": features(schedule.edge_role, e),
        "edge_width": 1.5,
        "vector_style": "line",
        "edge_color": palette[schedule.edge_role.reshape(-1)],
    }
    return [(points, points_kwargs, "points"), (vectors, vectors_kwargs, "vectors")]


def mask_schedule_labels_layer_data(graph, schedule, labels: np.ndarray) -> tuple:
    """The followed graph's entity label image coloured by role, one frame per recorded step (axis 0 = step).

    Frames are computed lazily from a per-step lookup table
    (:func:`~hmgdm_core.overlays.label_roles`), so hundreds of steps cost S × labels bytes, not S images.

    Parameters
    ----------
    graph : hmgdm_core.graph.EntityGraph
        The followed graph; ``entity_id`` indexes ``labels`` and ``region`` is the patch's box.
    schedule : hmgdm_core.overlays.MaskSchedule
        Its roles per recorded step (S steps, N nodes).
    labels : ndarray, shape (rows, cols), int
        Entity labels over the patch's read pixels (``region["mpp"]``), 0 background.

    Returns
    -------
    tuple
        ``(roles, kwargs, "labels")``: ``roles`` a lazy (S, rows, cols) uint8 dask array holding role + 1
        (1 condition, 2 target, 3 hidden, 0 background), coloured like the mask-schedule points and
        aligned with them and the slide (world units µm).
    """
    from napari.utils.colormaps import DirectLabelColormap

    from hmgdm_core.overlays import label_roles

    labels = np.asarray(labels)
    lookup = label_roles(schedule.node_role, graph.entity_id.numpy(), int(labels.max(initial=0)) + 1)
    rows, cols = labels.shape

    def frame(block_info=None) -> np.ndarray:
        step = block_info[None]["chunk-location"][0]
        return lookup[step][labels][None]

    roles = da.map_blocks(
        frame, chunks=((1,) * len(lookup), (rows,), (cols,)), dtype=np.uint8, meta=np.empty((0, 0, 0), np.uint8)
    )
    colours = {code + 1: ROLE_COLOURS[name] for code, name in enumerate(ROLE_NAMES)}
    region = graph.region
    kwargs = {
        "name": "mask schedule entities",
        "scale": (1.0, region["mpp"], region["mpp"]),
        "translate": (0.0, *_region_translate(region)),
        "units": ("", "µm", "µm"),
        "opacity": 0.6,
        "colormap": DirectLabelColormap(color_dict={0: "transparent", None: "transparent"} | colours),
        "metadata": {"hmgdm_region": dict(region), "hmgdm_roles": ("background", *ROLE_NAMES)},
    }
    return (roles, kwargs, "labels")


def attention_layer_data(points, region: dict) -> tuple:
    """Points layer data: every entity of a region's patches coloured by a classifier's attention.

    Parameters
    ----------
    points : hmgdm_core.overlays.EntityPoints
        Node positions (level-0 (y, x) px), patch index and relative attention N_p · a (1 = uniform).
    region : dict
        :meth:`hmgdm_core.io.Region.to_dict` of the patches' region (sizes the points).

    Returns
    -------
    tuple
        ``(pos (N, 2), kwargs, "points")`` in world units (µm), features ``patch`` and ``attention``,
        faces coloured by ``attention`` with the ``inferno`` colormap from 0 to its 99th percentile.
    """
    import pandas as pd

    base_mpp = region["base_mpp"]
    values = points.value.astype(np.float64)
    top = float(np.percentile(values, 99)) if len(values) else 1.0
    kwargs = {
        "name": "attention",
        "scale": (base_mpp, base_mpp),
        "features": pd.DataFrame({"patch": points.patch, "attention": values}),
        "size": max(4.0, 10.0 * region["mpp"] / base_mpp),
        "border_width": 0,
        "face_color": "attention",
        "face_colormap": "inferno",
        "face_contrast_limits": (0.0, top if top > 0 else 1.0),
        "units": ("µm", "µm"),
        "metadata": {"hmgdm_region": dict(region)},
    }
    return (points.pos.astype(np.float64), kwargs, "points")
