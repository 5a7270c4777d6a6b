"""A deployed artifact handed to ``predict``, ``serve`` or ``deploy`` is data: a ``.pt2`` archive holding a pickled
payload is refused before ``torch.export.load`` would unpickle it, and a file that is not the artifact its
manifest promises (a pickle instead of TorchScript, garbage instead of ONNX) is one line, exit 2."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from engine import EngineError


class _Planted:
    """Unpickling this creates the marker file: proof that code from the archive ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.marker, "w"))


def _planted(marker: Path) -> bytes:
    buffer = io.BytesIO()
    torch.save(_Planted(marker), buffer)
    return buffer.getvalue()


def _rewrite(archive: Path, change: Callable[[str, bytes], tuple[str, bytes] | None], extra: dict[str, bytes]) -> None:
    """Rewrite the zip ``archive`` entry by entry (``change`` returns the new name and bytes, None drops it)."""
    with zipfile.ZipFile(archive) as z:
        entries = [(name, z.read(name)) for name in z.namelist()]
    root = entries[0][0].split("/")[0]
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:
        for name, data in entries:
            changed = change(name.split("/", 1)[1], data)
            if changed is not None:
                z.writestr(f"{root}/{changed[0]}", changed[1])
        for name, data in extra.items():
            z.writestr(f"{root}/{name}", data)


@pytest.fixture(scope="module")
def exported(mlp_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engine_deploy.deploy import deploy

    out = tmp_path_factory.mktemp("export")
    deploy(mlp_run, "export", out=out, timing=False, samples=64)
    return out


@pytest.fixture(scope="module")
def scripted(mlp_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engine_deploy.deploy import deploy

    out = tmp_path_factory.mktemp("torchscript")
    deploy(mlp_run, "torchscript", out=out, timing=False, samples=64)
    return out


def _plant(kind: str, archive: Path, marker: Path) -> None:
    """Make ``archive`` one whose loading by ``torch.export.load`` would run the planted pickle (or native code)."""
    evil = _planted(marker)

    def change(name: str, data: bytes) -> tuple[str, bytes] | None:
        if kind == "weight" and name == "data/weights/model_weights_config.json":
            config = json.loads(data)
            first = next(iter(config["config"].values()))
            first["use_pickle"] = True
            return name, json.dumps(config).encode()
        if kind == "weight" and name == "data/weights/weight_0":
            return name, evil
        if kind in ("constant", "opaque") and name == "data/constants/model_constants_config.json":
            path = "tensor_0" if kind == "constant" else "opaque_obj_0"
            meta = {"path_name": path, "is_param": False, "use_pickle": kind == "constant", "tensor_meta": None}
            return name, json.dumps({"config": {"planted": meta}}).encode()
        if kind == "sample_inputs" and name == "data/sample_inputs/model.pt":
            return name, evil
        return name, data

    extra = {
        "constant": {"data/constants/tensor_0": evil},
        "opaque": {"data/constants/opaque_obj_0": b"cos\nsystem\n(S'true'\ntR."},
        "legacy_weights": {"data/weights/model.pt": evil},
        "aotinductor": {"data/aotinductor/model/model.so": b"\x7fELF"},
    }.get(kind, {})
    _rewrite(archive, change, extra)


KINDS = ["weight", "constant", "opaque", "sample_inputs", "legacy_weights", "aotinductor"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_pt2_archive_with_a_pickled_payload_is_refused_before_loading(exported: Path, tmp_path: Path, kind: str):
    import engine

    archive = Path(shutil.copy(exported / "model.pt2", tmp_path / "model.pt2"))
    marker = tmp_path / "marker"
    _plant(kind, archive, marker)
    for target in (
        engine.create("deploy", "deploy.export"),
        engine.create("deploy", "deploy.container", format="export"),
    ):
        with pytest.raises(EngineError) as refused:
            target.load(archive)
        assert not marker.exists(), "code from the archive ran"
        message = str(refused.value)
        assert str(archive) in message and "deploy" in message and "\n" not in message, message


def test_predict_and_serve_refuse_a_pickled_weight_in_one_line(
    exported: Path, mlp_run: Path, tmp_path: Path, cli: Any
) -> None:
    artifact = Path(shutil.copytree(exported, tmp_path / "deployed"))
    marker = tmp_path / "marker"
    _plant("weight", artifact / "model.pt2", marker)
    sample = tmp_path / "x.json"
    sample.write_text(json.dumps([[0.0] * 12]))
    for args in (("predict", str(mlp_run), str(sample)), ("serve", str(mlp_run), "--port", "0")):
        out = cli(*args, "--artifact", str(artifact))
        assert not marker.exists(), "code from the archive ran"
        assert out.returncode == 2, out.stderr[-2000:]
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "model.pt2" in lines[0] and "pickle" in lines[0], out.stderr[-2000:]
        assert "engine deploy" in lines[0]


def test_a_freshly_exported_archive_still_loads(exported: Path, mlp_run: Path, tmp_path: Path, cli: Any) -> None:
    sample = tmp_path / "x.json"
    sample.write_text(json.dumps([[0.0] * 12]))
    out = cli("predict", str(mlp_run), str(sample), "--artifact", str(exported), "--json")
    assert out.returncode == 0 and '"label"' in out.stdout, out.stderr[-2000:]


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (lambda: _torch_bytes({"weights": torch.zeros(3)}), "a pickle"),
        (lambda: b"not a model at all\n", "text"),
        (lambda: b"", "empty"),
    ],
)
def test_a_torchscript_artifact_that_is_not_torchscript_is_one_line(
    scripted: Path, mlp_run: Path, tmp_path: Path, cli: Any, content: Callable[[], bytes], name: str
) -> None:
    artifact = Path(shutil.copytree(scripted, tmp_path / "deployed"))
    (artifact / "model.pt").write_bytes(content())
    sample = tmp_path / "x.json"
    sample.write_text(json.dumps([[0.0] * 12]))
    out = cli("predict", str(mlp_run), str(sample), "--artifact", str(artifact))
    assert out.returncode == 2, out.stderr[-2000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "model.pt" in lines[0] and "TorchScript" in lines[0], out.stderr[-2000:]


def test_an_onnx_artifact_that_is_not_onnx_is_one_line(onnx_dir: Path, mlp_run: Path, tmp_path: Path, cli: Any):
    artifact = Path(shutil.copytree(onnx_dir, tmp_path / "deployed"))
    (artifact / "model.onnx").write_bytes(_torch_bytes({"weights": torch.zeros(3)}))
    sample = tmp_path / "x.json"
    sample.write_text(json.dumps([[0.0] * 12]))
    out = cli("predict", str(mlp_run), str(sample), "--artifact", str(artifact))
    assert out.returncode == 2, out.stderr[-2000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "model.onnx" in lines[0] and "ONNX" in lines[0], out.stderr[-2000:]


def _torch_bytes(value: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: {**m, "input": "batch"}, "input"),
        (lambda m: {**m, "input": {**m["input"], "shape": ["batch", "twelve"]}}, "shape"),
        (lambda m: {**m, "input": {**m["input"], "dtype": "object"}}, "dtype"),
        (lambda m: {**m, "options": ["trace"]}, "options"),
        (lambda m: {**m, "target": ["deploy.torchscript"]}, "target"),
        (lambda m: {**m, "class_names": "abc"}, "class_names"),
    ],
)
def test_an_altered_manifest_is_one_line(
    scripted: Path, mlp_run: Path, tmp_path: Path, cli: Any, edit: Callable[[dict], dict], message: str
) -> None:
    artifact = Path(shutil.copytree(scripted, tmp_path / "deployed"))
    manifest = json.loads((artifact / "manifest.json").read_text())
    (artifact / "manifest.json").write_text(json.dumps(edit(manifest)))
    sample = tmp_path / "x.json"
    sample.write_text(json.dumps([[0.0] * 12]))
    out = cli("predict", str(mlp_run), str(sample), "--artifact", str(artifact))
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert "manifest.json" in out.stderr and message in out.stderr, out.stderr[-2000:]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("manifest.json", b"\xff\xfe not utf-8"),
        ("manifest.json", b"[" * 100_000),
        ("x.json", b"[" * 100_000),
        ("x.csv", b"\xff\xfe\xfa,1\n"),
    ],
)
def test_malformed_files_are_one_line(
    scripted: Path, mlp_run: Path, tmp_path: Path, cli: Any, name: str, content: bytes
) -> None:
    artifact = Path(shutil.copytree(scripted, tmp_path / "deployed"))
    sample = tmp_path / ("x.json" if name == "manifest.json" else name)
    if name != "manifest.json":
        sample.write_bytes(content)
    else:
        sample.write_text(json.dumps([[0.0] * 12]))
        (artifact / name).write_bytes(content)
    out = cli("predict", str(mlp_run), str(sample), "--artifact", str(artifact))
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert name in out.stderr, out.stderr[-2000:]
