"""Batch downscaling on Dask (engine.distributed): a LocalCluster of two worker processes runs
small real scenes, one task each; a bad scene fails alone, a killed worker leaves nothing behind."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

import engine.distributed
from engine.cli import EXIT_ERROR, EXIT_OK, main
from engine.distributed import SceneOutcome, downscale_task, run_batch
from engine.pipeline import DownscaleRequest
from tests.engine.conftest import run_downscale

distributed = pytest.importorskip("distributed")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def client():
    """Two single-threaded worker processes, each given one scene at a time; a scene whose
    workers die three times is given up."""
    import dask

    config = {"distributed.scheduler.allowed-failures": 2, "distributed.scheduler.worker-saturation": 1.0}
    with dask.config.set(config):
        with distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster:
            with distributed.Client(cluster) as connected:
                yield connected


@pytest.fixture(scope="module")
def serial_bicubic(small_scene, tmp_path_factory):
    """The small scene downscaled in this process, the reference for every worker's output."""
    out = tmp_path_factory.mktemp("serial") / "serial.tif"
    run_downscale(small_scene, out)
    return gdal.Open(str(out)).ReadAsArray()


def scene_folder(small_scene, folder: Path, names) -> Path:
    folder.mkdir()
    for name in names:
        shutil.copy(small_scene.lst_path, folder / f"{name}_lst.tif")
        shutil.copy(small_scene.guidance_path, folder / f"{name}_refl.tif")
    return folder


def bicubic_request(folder: Path, name: str, out_dir: Path) -> DownscaleRequest:
    out_dir.mkdir(exist_ok=True)
    return DownscaleRequest(
        lst_path=str(folder / f"{name}_lst.tif"),
        guidance_paths=[str(folder / f"{name}_refl.tif")],
        output_path=str(out_dir / f"{name}_lst_downscaled.tif"),
        method="bicubic",
        threads=1,
    )


def scratch_folders(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".mocolsk-"))


def run_cli(*argv):
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main([str(a) for a in argv], stdout=stdout, stderr=stderr)
    return code, stdout.getvalue(), stderr.getvalue()


def scene_a_dies_once_then_downscale(request: DownscaleRequest) -> SceneOutcome:
    """The real scene task, except that the first run of scene 'a' kills its own worker process
    halfway through the scene, its scratch folder written; a marker beside the output records it."""
    marker = Path(request.output_path).with_suffix(".died")
    if not Path(request.lst_path).name.startswith("a_"):
        return downscale_task(request)

    def kill_halfway(percent: float) -> None:
        if percent >= 50 and not marker.exists():
            scratch = scratch_folders(marker.parent)
            marker.write_text(f"{os.getpid()}\n" + "\n".join(scratch))
            os.kill(os.getpid(), signal.SIGKILL)

    return downscale_task(request, progress=kill_halfway)


def doomed_scenes_kill_their_worker(request: DownscaleRequest) -> SceneOutcome:
    """The real scene task, except that a scene named 'doomed' kills every worker that runs it
    halfway through."""
    if "doomed" not in request.lst_path:
        return downscale_task(request)

    def kill_halfway(percent: float) -> None:
        if percent >= 50:
            os.kill(os.getpid(), signal.SIGKILL)

    return downscale_task(request, progress=kill_halfway)


def count_backend_opens() -> None:
    """In a worker: forget opened models and count the ONNX Runtime sessions opened from now."""
    from engine import backends

    backends.clear_backend_cache()
    real = backends.create_onnxruntime_backend

    def counted(*args, **kwargs):
        counted.opens += 1
        return real(*args, **kwargs)

    counted.opens, counted.real = 0, real
    backends.create_onnxruntime_backend = counted


def backend_opens() -> int:
    """In a worker: the sessions counted since count_backend_opens, and the counting undone."""
    from engine import backends

    counted = backends.create_onnxruntime_backend
    backends.create_onnxruntime_backend = counted.real
    return counted.opens


def test_each_scene_runs_on_a_worker_and_a_bad_scene_fails_alone_with_its_message(
    client, small_scene, serial_bicubic, tmp_path
):
    folder = scene_folder(small_scene, tmp_path / "in", names=("a", "b", "c"))
    (folder / "bad_lst.tif").write_text("not a raster")
    shutil.copy(small_scene.guidance_path, folder / "bad_refl.tif")
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(
        "downscale", "--folder", folder, "--lst-pattern", "*_lst.tif", "--guidance-pattern", "*_refl.tif",
        "--method", "bicubic", "--threads", 1, "--out-dir", out, "--dask", client.scheduler.address,
    )  # fmt: skip
    assert code == EXIT_ERROR
    assert "error: 1 of 4 scenes failed" in stderr
    assert "3 of 4 scenes written" in stdout and "[4/4]" in stdout
    bad = folder / "bad_lst.tif"
    assert f"] {bad}: FAILED (" in stdout  # as it ends
    assert f"\n  {bad}: LST {bad}: GDAL cannot read" in stdout  # and in the summary
    assert sorted(p.name for p in out.iterdir()) == [f"{n}_lst_downscaled.tif" for n in ("a", "b", "c")]
    for name in ("a", "b", "c"):
        written = gdal.Open(str(out / f"{name}_lst_downscaled.tif")).ReadAsArray()
        np.testing.assert_array_equal(written, serial_bicubic)


def test_an_existing_output_fails_its_scene_untouched_unless_overwriting(client, small_scene, tmp_path):
    folder = scene_folder(small_scene, tmp_path / "in", names=("a", "b"))
    out = tmp_path / "out"
    requests = [bicubic_request(folder, name, out) for name in ("a", "b")]
    Path(requests[1].output_path).write_text("an earlier result")
    report = run_batch(client, requests)
    assert [outcome.lst_path for outcome in report.failed] == [requests[1].lst_path]
    assert "already exists; choose another path or allow overwriting" in report.failed[0].error
    assert Path(requests[1].output_path).read_text() == "an earlier result"
    report = run_batch(client, [replace(request, overwrite=True) for request in requests])
    assert not report.failed, report.summary()
    assert gdal.Open(requests[1].output_path) is not None


def test_relative_paths_are_resolved_here_before_the_workers_see_them(
    client, small_scene, tmp_path, monkeypatch
):
    scene_folder(small_scene, tmp_path / "in", names=("a",))
    monkeypatch.chdir(tmp_path)  # the workers' working folder stays where they started
    code, stdout, stderr = run_cli(
        "downscale", "--pair", "in/a_lst.tif", "in/a_refl.tif", "--method", "bicubic",
        "--out-dir", "out", "--dask", client.scheduler.address,
    )  # fmt: skip
    assert code == EXIT_OK, stdout + stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a_lst_downscaled.tif"]


def test_a_worker_process_opens_the_model_once_for_all_its_scenes(client, small_scene, tmp_path):
    folder = scene_folder(small_scene, tmp_path / "in", names=("a", "b", "c", "d"))
    client.run(count_backend_opens)
    code, stdout, stderr = run_cli(
        "downscale", "--folder", folder, "--lst-pattern", "*_lst.tif", "--guidance-pattern", "*_refl.tif",
        "--model", "mocolsk-x4-landsat-light", "--device", "cpu", "--threads", 1,
        "--out-dir", tmp_path / "out", "--dask", client.scheduler.address,
    )  # fmt: skip
    opens = client.run(backend_opens)
    assert code == EXIT_OK, stdout + stderr
    assert stdout.count(": wrote ") == 4
    pids = [line.rsplit(":", 1)[1].rstrip(")") for line in stdout.splitlines() if ": wrote " in line]
    scenes_per_worker = {pid: pids.count(pid) for pid in pids}
    assert max(scenes_per_worker.values()) >= 2  # four scenes, two workers
    assert max(opens.values()) == 1 and sum(opens.values()) == len(scenes_per_worker)


def test_a_worker_killed_mid_scene_leaves_no_partial_output_and_the_scene_is_rerun(
    client, small_scene, serial_bicubic, tmp_path
):
    folder = scene_folder(small_scene, tmp_path / "in", names=("a", "b"))
    out = tmp_path / "out"
    requests = [bicubic_request(folder, name, out) for name in ("a", "b")]
    report = run_batch(client, requests, task=scene_a_dies_once_then_downscale)
    assert not report.failed, report.summary()
    died_pid, *scratch_at_death = (out / "a_lst_downscaled.died").read_text().split("\n")
    assert scratch_at_death  # the killed run had written into its scratch folder
    assert report.outcomes[0].worker.rsplit(":", 1)[1] != died_pid
    for outcome in report.outcomes:
        np.testing.assert_array_equal(gdal.Open(outcome.output_path).ReadAsArray(), serial_bicubic)
    assert sorted(p.name for p in out.iterdir()) == [
        "a_lst_downscaled.died", "a_lst_downscaled.tif", "b_lst_downscaled.tif"
    ]  # fmt: skip


def test_a_scene_that_keeps_killing_its_workers_is_reported_failed_and_the_others_written(
    client, small_scene, tmp_path
):
    folder = scene_folder(small_scene, tmp_path / "in", names=("a", "doomed"))
    out = tmp_path / "out"
    requests = [bicubic_request(folder, name, out) for name in ("a", "doomed")]
    report = run_batch(client, requests, task=doomed_scenes_kill_their_worker)
    assert [outcome.lst_path for outcome in report.failed] == [requests[1].lst_path]
    assert "its worker died and the scene was given up" in report.failed[0].error
    assert [p.name for p in out.iterdir()] == ["a_lst_downscaled.tif"]  # nor any scratch folder


def test_an_unreachable_scheduler_is_named_with_how_to_start_one(small_scene, tmp_path, monkeypatch):
    monkeypatch.setattr(engine.distributed, "CONNECT_TIMEOUT_S", 1)
    code, _, stderr = run_cli(
        "downscale", "--pair", small_scene.lst_path, small_scene.guidance_path, "--method", "bicubic",
        "--out-dir", tmp_path / "out", "--dask", "tcp://127.0.0.1:9",
    )  # fmt: skip
    assert code == EXIT_ERROR
    assert "error: Cannot reach the Dask scheduler at tcp://127.0.0.1:9" in stderr
    assert "start it (`dask scheduler`)" in stderr
    assert list((tmp_path / "out").iterdir()) == []


def run_cli_without_dask(*argv) -> subprocess.CompletedProcess:
    """The command line in a Python where importing dask or distributed fails, as if not installed."""
    script = (
        "import sys; sys.modules['dask'] = sys.modules['distributed'] = None; "
        "from engine.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    command = [sys.executable, "-c", script, *map(str, argv)]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True)


def test_the_engine_runs_without_dask_and_the_dask_options_say_how_to_install_it(small_scene, tmp_path):
    scene = ("downscale", "--pair", small_scene.lst_path, small_scene.guidance_path, "--method", "bicubic")
    serial = run_cli_without_dask(*scene, "--quiet", "--out-dir", tmp_path / "serial")
    assert serial.returncode == EXIT_OK, serial.stderr
    assert (tmp_path / "serial" / "lst_120m_downscaled.tif").is_file()
    on_dask = run_cli_without_dask(*scene, "--out-dir", tmp_path / "dask", "--dask-local", 2)
    assert on_dask.returncode == EXIT_ERROR
    assert "--dask needs Dask: install it into this Python" in on_dask.stderr
