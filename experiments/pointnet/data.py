"""ModelNet point clouds: read meshes (.off) or pre-sampled clouds (.pcd), cache them as tensors.

Both sources use the layout ``<root>/<class>/<train|test>/<name>.<ext>``. Each shape becomes
``num_points`` points, centred and scaled into the unit sphere, and the whole split is saved once
to a cache file that training reads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from structural_dropout.io import atomic_write
from structural_dropout.lab.downloads import DATA_HINT, fetch

ARCHIVES = {
    "ModelNet10": "http://3dvision.princeton.edu/projects/2014/3DShapeNets/ModelNet10.zip",
    "ModelNet40": "http://modelnet.cs.princeton.edu/ModelNet40.zip",
}
SPLITS = ("train", "test")


def read_pcd(path: Path) -> np.ndarray:
    """Points ``[N, 3]`` of a PCD file holding float32 x y z (binary or ascii data)."""
    with open(path, "rb") as f:
        header: dict[str, list[str]] = {}
        while True:
            line = f.readline()
            if not line:
                raise ValueError(f"{path}: PCD header has no DATA line")
            words = line.decode("ascii", "replace").split()
            if not words or words[0].startswith("#"):
                continue
            header[words[0].upper()] = words[1:]
            if words[0].upper() == "DATA":
                break
        body = f.read()
    fields = header.get("FIELDS", [])
    if fields[:3] != ["x", "y", "z"] or header.get("TYPE", [])[:3] != ["F"] * 3:
        raise ValueError(f"{path}: expected float fields x y z first, got {fields}")
    n, width = int(header["POINTS"][0]), len(fields)
    if header["DATA"][0] == "ascii":
        values = np.array(body.split(), dtype=np.float32)
    elif header["DATA"][0] == "binary":
        if header.get("SIZE", [])[:width] != ["4"] * width:
            raise ValueError(f"{path}: only 4-byte binary fields are supported")
        values = np.frombuffer(body, dtype="<f4", count=n * width)
    else:
        raise ValueError(f"{path}: unsupported PCD DATA {header['DATA'][0]!r}")
    if values.size != n * width:
        raise ValueError(f"{path}: {values.size} values for {n} points of {width} fields")
    return values.reshape(n, width)[:, :3].astype(np.float32)


def read_off(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices ``[V, 3]`` and triangles ``[F, 3]`` of an OFF mesh (polygons are fanned)."""
    tokens = Path(path).read_text().split("\n")
    lines = [t.split("#")[0].strip() for t in tokens]
    lines = [t for t in lines if t]
    first = lines[0]
    if not first.startswith("OFF"):
        raise ValueError(f"{path}: not an OFF file")
    # Some ModelNet files glue the counts to the keyword: "OFF490 518 0".
    counts = first[3:].split() or lines[1].split()
    body = lines[1:] if first[3:].split() else lines[2:]
    n_vertices, n_faces = int(counts[0]), int(counts[1])
    vertices = np.array([v.split()[:3] for v in body[:n_vertices]], dtype=np.float64)
    triangles = []
    for face in body[n_vertices : n_vertices + n_faces]:
        ids = [int(i) for i in face.split()]
        corners = ids[1 : 1 + ids[0]]
        triangles += [(corners[0], corners[i], corners[i + 1]) for i in range(1, len(corners) - 1)]
    if len(vertices) != n_vertices or not triangles:
        raise ValueError(f"{path}: expected {n_vertices} vertices and some faces")
    return vertices, np.array(triangles, dtype=np.int64)


def sample_surface(
    vertices: np.ndarray, triangles: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """``n`` points uniform over the mesh surface: triangles chosen by area, then barycentric."""
    a, b, c = (vertices[triangles[:, i]] for i in range(3))
    areas = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    if areas.sum() <= 0:
        raise ValueError("mesh has zero surface area")
    chosen = rng.choice(len(areas), size=n, p=areas / areas.sum())
    u, v = rng.random((2, n, 1))
    flip = (u + v) > 1  # reflect points of the parallelogram back into the triangle
    u, v = np.where(flip, 1 - u, u), np.where(flip, 1 - v, v)
    a, b, c = a[chosen], b[chosen], c[chosen]
    return (a + u * (b - a) + v * (c - a)).astype(np.float32)


def normalize(points: np.ndarray) -> np.ndarray:
    """Centre at the mean and scale so the farthest point lies on the unit sphere."""
    points = points - points.mean(axis=0)
    radius = np.linalg.norm(points, axis=1).max()
    return points / radius if radius > 0 else points


def list_shapes(root: Path, suffix: str) -> tuple[list[str], dict[str, list[tuple[Path, int]]]]:
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and (d / "train").is_dir())
    if not classes:
        raise FileNotFoundError(f"no <class>/train folders under {root}")
    files = {
        split: [
            (path, label)
            for label, name in enumerate(classes)
            for path in sorted((root / name / split).glob(f"*{suffix}"))
        ]
        for split in SPLITS
    }
    for split, items in files.items():
        if not items:
            raise FileNotFoundError(f"no {suffix} files in {root}/<class>/{split}/")
    return classes, files


def build_cache(root: Path, suffix: str, num_points: int, cache: Path, seed: int = 0) -> dict:
    """Read every shape of both splits into ``{split: (points [N, P, 3], labels [N])}``."""
    classes, files = list_shapes(root, suffix)
    rng = np.random.default_rng(seed)
    data: dict = {"classes": classes, "source": str(root), "num_points": num_points}
    for split in SPLITS:
        clouds = []
        for path, _ in tqdm(files[split], desc=f"read {root.name}/{split}", leave=False):
            if suffix == ".off":
                points = sample_surface(*read_off(path), num_points, rng)
            else:
                points = read_pcd(path)
                if len(points) < num_points:
                    raise ValueError(f"{path} has {len(points)} points, {num_points} asked for")
                points = points[np.sort(rng.choice(len(points), num_points, replace=False))]
            clouds.append(normalize(points))
        labels = torch.tensor([label for _, label in files[split]])
        data[split] = (torch.from_numpy(np.stack(clouds)), labels)
    atomic_write(cache, lambda tmp: torch.save(data, tmp))
    return data


def load_modelnet(
    root: str | Path,
    name: str,
    source: str,
    num_points: int,
    cache_dir: str | Path,
    download: bool,
) -> dict:
    """The cached tensors of ``<root>/<source folder>``, building (and downloading) if needed.

    ``source``: ``"off"`` reads the official archive's meshes (``<root>/<name>``), ``"pcd"`` reads
    pre-sampled clouds (``<root>/<name>_pcd<points>``, e.g. ModelNet10_pcd1024).
    """
    if source not in ("off", "pcd"):
        raise ValueError(f"source must be 'off' or 'pcd', got {source!r}")
    root = Path(root).expanduser()
    folder = root / name if source == "off" else root / f"{name}_pcd1024"
    cache = Path(cache_dir).expanduser() / f"{name}_{source}_{num_points}.pt"
    if cache.is_file():
        data = torch.load(cache, weights_only=False)
        if data["source"] == str(folder):
            return data
    if not folder.is_dir():
        if source == "pcd" or not download:
            raise FileNotFoundError(
                f"{name} ({source}) not found at {folder}; {DATA_HINT}"
                + (", or allow downloads with task.download=true" if source == "off" else "")
            )
        # Imported here: torchvision's import costs seconds, and only a download needs it.
        from torchvision.datasets.utils import download_and_extract_archive

        fetch(
            lambda: download_and_extract_archive(ARCHIVES[name], download_root=str(root)),
            folder,
            f"{name} meshes",
        )
    return build_cache(folder, f".{source}", num_points, cache)
