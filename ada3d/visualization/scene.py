"""The Open3D scene of one frame: coloured points, box wireframes, the BEV importance map on the ground.

A :class:`Scene` is renderer-neutral: Open3D geometries with Filament materials, plus text labels and a
legend that the off-screen renderer draws into the image and the interactive viewer shows as 3D labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ada3d.structures import box_corners
from ada3d.visualization.colors import (
    BACKGROUND_COLOR,
    GT_BOX_COLOR,
    IMPORTANCE_COLORMAP,
    PRED_BOX_COLOR,
    point_colors,
    scalar_colors,
    srgb_encode,
)
from ada3d.visualization.frame_view import FrameView, GridGeometry

try:
    import open3d as o3d
    from open3d.visualization import rendering
except ImportError as error:  # the viz extra
    raise ImportError("the Open3D viewer needs open3d: pip install 'ada3d[viz]' (or pip install open3d)") from error

# Box edges over box_corners' order (bottom 0-3, top 4-7), then a cross on the front face (corners 0, 3, 7, 4)
# that shows the heading.
BOX_EDGES = np.array(
    [[0, 1], [1, 2], [2, 3], [3, 0], [4, 5], [5, 6], [6, 7], [7, 4], [0, 4], [1, 5], [2, 6], [3, 7], [0, 7], [3, 4]]
)
IMPORTANCE_BELOW_GROUND = 0.05  # metres: the importance map lies this far under the ground so ground points show
TEXTURE_SIZE = 2048  # texels along the longer side of the importance texture, at most (before whole-cell rounding)


@dataclass
class SceneOptions:
    """What to draw.

    Attributes:
        color_by: ``"stage"``, ``"height"`` or ``"intensity"`` (see :func:`~ada3d.visualization.colors.point_colors`).
        stage: the stage (index or name) that ``"stage"`` colouring and the importance map come from.
        show_gt / show_pred / show_importance: draw ground-truth boxes, predicted boxes (with their
            ``class score`` labels), the stage's importance map.
        point_size: in pixels.
        box_width: thickness of the box edges in metres.
        ground_z: height (metres) of the importance map; default: the 2nd percentile of the points' z.
    """

    color_by: str = "stage"
    stage: int | str = 0
    show_gt: bool = True
    show_pred: bool = True
    show_importance: bool = True
    point_size: float = 2.0
    box_width: float = 0.12
    ground_z: float | None = None


@dataclass
class SceneItem:
    name: str
    geometry: object  # an open3d.geometry.Geometry3D
    material: rendering.MaterialRecord


@dataclass
class TextLabel:
    position: np.ndarray  # [3] metres
    text: str
    color: tuple[float, float, float]


@dataclass
class Scene:
    """Geometries to add to an Open3D scene, text anchored in 3D, and what the colours mean."""

    items: list[SceneItem] = field(default_factory=list)
    labels: list[TextLabel] = field(default_factory=list)
    legend: list[tuple[str, tuple]] = field(default_factory=list)
    caption: str = ""


def _material(shader: str, point_size: float = 1.0) -> rendering.MaterialRecord:
    material = rendering.MaterialRecord()
    material.shader = shader
    material.point_size = point_size
    return material


def point_cloud(points: np.ndarray, colors: np.ndarray) -> o3d.geometry.PointCloud:
    """``[N, >=3]`` points and ``[N, 3]`` colours -> an Open3D point cloud."""
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points[:, :3], dtype=np.float64)))
    cloud.colors = o3d.utility.Vector3dVector(np.asarray(colors, dtype=np.float64))
    return cloud


def box_edges(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edge end points of ``[M, 7]`` LiDAR boxes: 12 edges and a cross on the front face per box.

    Returns:
        ``(starts [M * 14, 3], ends [M * 14, 3])`` in metres.
    """
    corners = box_corners(np.asarray(boxes, dtype=np.float64).reshape(-1, 7))  # [M, 8, 3]
    return corners[:, BOX_EDGES[:, 0]].reshape(-1, 3), corners[:, BOX_EDGES[:, 1]].reshape(-1, 3)


def box_wireframes(boxes: np.ndarray, color: tuple[float, float, float], width: float) -> o3d.geometry.TriangleMesh:
    """Wireframes of ``[M, 7]`` LiDAR boxes (:func:`box_edges`) as square bars ``width`` metres thick.

    Bars rather than GL lines: Filament's wide-line shader draws wrong widths under orthographic and
    distant cameras, and one-pixel lines are hard to see; bars are real geometry, depth-tested, and look
    the same in the window and in the PNGs.
    """
    starts, ends = box_edges(boxes)
    direction = ends - starts
    direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-9)
    helper = np.where(np.abs(direction[:, 2:3]) < 0.9, [[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0]])
    side = np.cross(direction, helper)
    side /= np.linalg.norm(side, axis=1, keepdims=True)
    up = np.cross(direction, side)
    offsets = np.stack([side + up, side - up, -side - up, -side + up], 1) * (width / 2)  # [E, 4, 3]
    vertices = np.concatenate([starts[:, None] + offsets, ends[:, None] + offsets], 1)  # [E, 8, 3]
    # four long faces, two triangles each, over the ring 0-1-2-3 at the start and 4-5-6-7 at the end
    faces = np.array([[i, (i + 1) % 4, 4 + (i + 1) % 4] for i in range(4)] + [[i, 4 + (i + 1) % 4, 4 + i]
                                                                             for i in range(4)])
    triangles = (faces[None] + 8 * np.arange(len(starts))[:, None, None]).reshape(-1, 3)
    mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(vertices.reshape(-1, 3)),
                                     o3d.utility.Vector3iVector(triangles))
    mesh.vertex_colors = o3d.utility.Vector3dVector(np.tile(np.asarray(color, dtype=np.float64),
                                                            (len(vertices) * 8, 1)))
    mesh.compute_triangle_normals()  # without normals Open3D's first upload of the mesh takes seconds
    return mesh


def importance_item(importance: np.ndarray, grid: GridGeometry, z: float) -> SceneItem:
    """The ``[H, W]`` importance map as one textured rectangle over ``grid`` at height ``z`` (metres).

    Colours span the map's finite min..max; NaN cells are black. Each cell is several texels wide so the
    texture's linear filtering only softens cell borders.
    """
    finite = np.isfinite(importance)
    low, high = (float(importance[finite].min()), float(importance[finite].max())) if finite.any() else (0.0, 1.0)
    colors = scalar_colors(np.where(finite, importance, low).ravel(), IMPORTANCE_COLORMAP, low, high)
    colors[~finite.ravel()] = 0.0
    texels_per_cell = max(1, min(8, TEXTURE_SIZE // max(importance.shape)))
    texture = (255 * srgb_encode(colors.reshape(*importance.shape, 3))).round().astype(np.uint8)
    # texture row 0 is the far edge (v = 1), so rows run from y1 down to y0
    texture = np.repeat(np.repeat(texture[::-1], texels_per_cell, 0), texels_per_cell, 1)
    x0, y0, _, x1, y1, _ = grid.point_cloud_range
    corners = np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], dtype=np.float64)
    mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(corners),
                                     o3d.utility.Vector3iVector(np.array([[0, 1, 2], [0, 2, 3]])))
    mesh.triangle_uvs = o3d.utility.Vector2dVector(np.array([[0, 0], [1, 0], [1, 1], [0, 0], [1, 1], [0, 1]], float))
    mesh.vertex_colors = o3d.utility.Vector3dVector(np.ones((4, 3)))  # unlit colour = texture x vertex colour
    material = _material("defaultUnlit")
    material.albedo_img = o3d.geometry.Image(np.ascontiguousarray(texture))
    return SceneItem("importance", mesh, material)


def configure_open3d_scene(open3d_scene: rendering.Open3DScene) -> None:
    """Dark background, linear tone mapping and no post-processing, so colours render exactly as given."""
    open3d_scene.set_background([*srgb_encode(np.asarray(BACKGROUND_COLOR)), 1.0])  # decoded as sRGB
    open3d_scene.view.set_color_grading(rendering.ColorGrading(rendering.ColorGrading.Quality.HIGH,
                                                               rendering.ColorGrading.ToneMapping.LINEAR))
    open3d_scene.view.set_post_processing(False)


def show_in_open3d_scene(scene: Scene, open3d_scene: rendering.Open3DScene) -> None:
    """Replace the geometry of ``open3d_scene`` by ``scene``'s items (labels and legend are the caller's)."""
    open3d_scene.clear_geometry()
    for item in scene.items:
        open3d_scene.add_geometry(item.name, item.geometry, item.material)


def _caption(view: FrameView, options: SceneOptions) -> str:
    if options.color_by != "stage":
        return f"{view.name}: points by {options.color_by}"
    stage = view.stage(options.stage)
    return f"{view.name}: stage {view.stages.index(stage) + 1}/{len(view.stages)} '{stage.name}'"


def build_scene(view: FrameView, options: SceneOptions | None = None) -> Scene:
    """The :class:`Scene` of ``view`` under ``options`` (default :class:`SceneOptions`)."""
    options = SceneOptions() if options is None else options
    colors, legend = point_colors(view, options.color_by, options.stage)
    scene = Scene(legend=legend, caption=_caption(view, options))
    scene.items.append(SceneItem("points", point_cloud(view.points, colors),
                                 _material("defaultUnlit", point_size=options.point_size)))
    box_material = _material("defaultUnlit")
    if options.show_gt and len(view.gt_boxes):
        scene.items.append(SceneItem("gt_boxes", box_wireframes(view.gt_boxes, GT_BOX_COLOR, options.box_width),
                                     box_material))
        scene.legend.append((f"ground truth ({len(view.gt_boxes)})", GT_BOX_COLOR))
    if options.show_pred and len(view.pred_boxes):
        scene.items.append(SceneItem("pred_boxes",
                                     box_wireframes(view.pred_boxes, PRED_BOX_COLOR, options.box_width), box_material))
        scene.legend.append((f"predictions ({len(view.pred_boxes)})", PRED_BOX_COLOR))
        tops = view.pred_boxes[:, :3].copy()
        tops[:, 2] += view.pred_boxes[:, 5]
        scene.labels.extend(TextLabel(tops[i], view.label_text(i), PRED_BOX_COLOR) for i in range(len(tops))
                            if view.label_text(i))
    if options.show_importance and view.stages:
        stage = view.stage(options.stage)
        if stage.importance is not None:
            ground = np.percentile(view.points[:, 2], 2) if options.ground_z is None else options.ground_z
            scene.items.append(importance_item(stage.importance, stage.importance_grid,
                                               ground - IMPORTANCE_BELOW_GROUND))
            scene.legend.append((f"importance ({IMPORTANCE_COLORMAP}, low to high)",
                                 tuple(scalar_colors([1.0], IMPORTANCE_COLORMAP, 0, 1)[0])))
    return scene
