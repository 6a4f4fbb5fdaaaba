"""Fixtures shared by every test folder: a throw-away PostgreSQL database on the project machine's server, a
private PostgreSQL server to stop and restart, a study database in both storage modes (SQLite, PostgreSQL), a
headless Chromium, the installed `afpe` run as a user would (by absolute path, a bare PATH), ChestX, Decathlon and
BraTS folders in the published layouts (NIfTI with anisotropic spacing), and one small finished search with kept
checkpoints."""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

BARE_PATH = "/usr/bin:/bin"

POSTGRES_ADMIN_URL = os.environ.get("AFPE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The `container` tests first: their minutes (an image build on a new machine) then overlap the rest of the
    suite in the other xdist process (`--dist loadfile` hands out files in collection order) instead of running
    alone at its end."""
    items.sort(key=lambda item: item.get_closest_marker("container") is None)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The admin URL of the local PostgreSQL; fails loudly in CI when it is missing, skips elsewhere."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    try:
        engine = sqlalchemy.create_engine(POSTGRES_ADMIN_URL)
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("select 1"))
        engine.dispose()
    except Exception as error:  # noqa: BLE001 - any failure to connect means "no server"
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI at {POSTGRES_ADMIN_URL}: {error}")
        pytest.skip(f"no PostgreSQL at {POSTGRES_ADMIN_URL}: {error}")
    return POSTGRES_ADMIN_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards; yields its SQLAlchemy URL."""
    from afpe.search.testing import postgres_database

    with postgres_database(postgres_server) as url:
        yield url


@pytest.fixture
def private_postgres() -> Iterator:
    """A PostgreSQL server of this test's own (`afpe.search.testing.PrivatePostgres`), to stop and restart;
    the machine's shared server is never touched. Fails in CI, skips elsewhere, without PostgreSQL binaries."""
    from afpe.search.testing import PrivatePostgres

    try:
        server = PrivatePostgres()
    except FileNotFoundError as error:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL server binaries are required in CI: {error}")
        pytest.skip(str(error))
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture(autouse=True)
def private_artifact_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Checkpoints kept by a test's runs go to its own folder ($AFPE_ARTIFACT_DIR), never ~/.afpe/artifacts."""
    path = tmp_path / "artifacts"
    monkeypatch.setenv("AFPE_ARTIFACT_DIR", str(path))
    return path


KEPT_SPEC = {
    "name": "kept",
    "n_trials": 4,
    "seed": 5,
    "metric": "val_loss",
    "direction": "minimize",
    "repeats": {"top_k": 2, "seeds": 1},
}


@pytest.fixture(scope="session")
def kept_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:
    """(SQLite URL, spec) of the study `kept`: a real search on a private local Ray (4 tiny synthetic2d trials,
    then one repeat of each of the top 2), its checkpoints kept beside the database (`study-artifacts/`). Tests
    read it and may add other studies to the database, never change this one."""
    from afpe.search import run_study, validate_spec
    from afpe.search.driver import ray_session
    from afpe.search.testing import tiny_synthetic2d

    folder = tmp_path_factory.mktemp("kept")
    spec = validate_spec(tiny_synthetic2d(trainer={"lr": 0.003}, **KEPT_SPEC))
    storage = f"sqlite:///{folder / 'study.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AFPE_TUNE_DIR", str(folder / "tune"))
        patch.delenv("AFPE_ARTIFACT_DIR", raising=False)
        with ray_session(None):
            run_study(spec, storage=storage)
    return storage, spec.model_dump(mode="json")


@pytest.fixture(params=["sqlite", "postgres"])
def storage_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A fresh, empty study database: a SQLite file, then (second run) a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'studies.db'}"
    return request.getfixturevalue("postgres_url")


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
]


@pytest.fixture(scope="session")
def render_dom(tmp_path_factory: pytest.TempPathFactory):
    """`render_dom(url) -> str`: the DOM after a real headless Chromium loaded `url` and ran its scripts."""
    import shutil
    import subprocess

    chromium = shutil.which("chromium")
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("Debian chromium is required in CI (.ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")

    def render(url: str, budget_ms: int = 5000) -> str:
        profile = tmp_path_factory.mktemp("chromium-profile")
        command = [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--virtual-time-budget={budget_ms}",
            "--dump-dom",
            url,
        ]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout

    return render


class Browser:
    """A headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: JSON messages
    ended by NUL on file descriptors 3 and 4, no port opened): `goto(url)`, `run(js)` (a promise is awaited,
    the value returned), `wait_for(js)` (until the expression is truthy). One tab, one fresh profile."""

    def __init__(self, chromium: str, profile: Path) -> None:
        import json
        import subprocess

        self._json = json
        to_chrome_read, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_write = os.pipe()

        def pipes_as_3_and_4() -> None:
            high_read, high_write = os.dup(to_chrome_read), os.dup(from_chrome_write)
            os.dup2(high_read, 3, inheritable=True)
            os.dup2(high_write, 4, inheritable=True)

        command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"]
        self.process = subprocess.Popen(
            command, preexec_fn=pipes_as_3_and_4, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        os.close(to_chrome_read)
        os.close(from_chrome_write)
        self._buffer = b""
        self._id = 0
        targets = self._call("Target.getTargets")["targetInfos"]
        page = next(t["targetId"] for t in targets if t["type"] == "page")
        self._session = self._call("Target.attachToTarget", targetId=page, flatten=True)["sessionId"]

    def _call(self, method: str, session: str | None = None, **params):
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome, self._json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buffer:
                chunk = os.read(self._from_chrome, 1 << 16)
                assert chunk, "chromium closed its DevTools pipe"
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            answer = self._json.loads(raw)
            if answer.get("id") == self._id:
                assert "error" not in answer, answer["error"]
                return answer["result"]

    def run(self, expression: str):
        result = self._call(
            "Runtime.evaluate", self._session, expression=expression, awaitPromise=True, returnByValue=True
        )
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20.0):
        import time

        deadline = time.monotonic() + timeout
        while not (value := self.run(expression)):
            assert time.monotonic() < deadline, f"still falsy after {timeout} s: {expression}"
            time.sleep(0.1)
        return value

    def goto(self, url: str) -> None:
        self._call("Page.navigate", self._session, url=url)
        self.wait_for(f"location.href === {self._json.dumps(url)} && document.readyState === 'complete'")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        os.close(self._to_chrome)
        os.close(self._from_chrome)


@pytest.fixture
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """A `Browser` (headless Chromium driven over DevTools) with a fresh profile, closed after the test."""
    import shutil

    chromium = shutil.which("chromium")
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("Debian chromium is required in CI (.ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    driven = Browser(chromium, tmp_path_factory.mktemp("chromium-driven"))
    try:
        yield driven
    finally:
        driven.close()


@pytest.fixture(scope="session")
def afpe_executable() -> str:
    """The installed `afpe` console script, by absolute path (as systemd, cron or a container would start it)."""
    path = Path(sys.executable).parent / "afpe"
    assert path.is_file(), f"{path}: the package is not installed in this environment"
    return str(path)


@pytest.fixture
def user_env(tmp_path: Path) -> dict[str, str]:
    """A user's environment without the venv on PATH, and a private HOME, Tune and cache folder."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("VIRTUAL_ENV", "AFPE_", "RAY_"))}
    home = tmp_path / "home"
    home.mkdir()
    return {
        **env,
        "PATH": BARE_PATH,
        "HOME": str(home),
        "AFPE_TUNE_DIR": str(tmp_path / "tune"),
        "AFPE_CACHE_DIR": str(tmp_path / "cache"),
    }


CHESTX_COLUMNS = [
    "Image Index", "Finding Labels", "Follow-up #", "Patient ID", "Patient Age", "Patient Gender", "View Position",
    "OriginalImage[Width", "Height]", "OriginalImagePixelSpacing[x", "y]",
]  # fmt: skip


def write_chestx(root: Path, patients: int = 10, per_patient: int = 2, csv_name: str = "Data_Entry_2017_v2020.csv"):
    """NIH layout: label CSV, train_val_list.txt / test_list.txt, PNGs in images_001/images and
    images_002/images (1024 is shrunk to 48 x 40 to stay tiny); the first image is RGBA."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    findings = ["No Finding", "Effusion", "Cardiomegaly|Effusion", "Hernia", "Mass|Nodule|Atelectasis"]
    rows, names = [], []
    for patient in range(1, patients + 1):
        for follow_up in range(per_patient):
            name = f"{patient:08d}_{follow_up:03d}.png"
            labels = findings[(patient + follow_up) % len(findings)]
            folder = root / ("images_001" if patient % 2 else "images_002") / "images"
            folder.mkdir(parents=True, exist_ok=True)
            gray = rng.integers(0, 255, (48, 40), dtype=np.uint8)
            if not names:
                image = np.dstack([gray, gray, gray, np.full_like(gray, 255)])  # RGBA, as some published PNGs
            else:
                image = gray
            cv2.imwrite(str(folder / name), image)
            rows.append([name, labels, follow_up, patient, 50, "M", "PA", 1024, 1024, 0.143, 0.143])
            names.append(name)
    with (root / csv_name).open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(CHESTX_COLUMNS)
        writer.writerows(rows)
    (root / "train_val_list.txt").write_text("\n".join(names[:-2]) + "\n")
    (root / "test_list.txt").write_text("\n".join(names[-2:]) + "\n")
    return root


@pytest.fixture
def make_chestx() -> Callable[..., Path]:
    """`make_chestx(root, ...)`: a tiny NIH ChestX-ray14 folder (see `write_chestx`)."""
    return write_chestx


#: The fixtures' voxel size in mm (x, y, z): thin in-plane, thick slices, as in the Decathlon's CT tasks.
VOLUME_SPACING = (0.8, 0.8, 2.5)
VOLUME_SHAPE = (40, 40, 12)
BRATS_SURROUND = 2
BRATS_SUFFIXES = {"2021": ("_", ("t1", "t1ce", "t2", "flair"), 4), "2023": ("-", ("t1n", "t1c", "t2w", "t2f"), 3)}


def write_nifti(path: Path, array: np.ndarray, spacing: Sequence[float] = VOLUME_SPACING) -> Path:
    """`array` as a NIfTI file whose affine has voxel size `spacing` (mm) and LPS orientation (x and y flipped, as
    scanners write them), so a reader must reorient to RAS."""
    import nibabel

    affine = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    path.parent.mkdir(parents=True, exist_ok=True)
    nibabel.save(nibabel.Nifti1Image(array, affine), path)
    return path


def blob_case(
    index: int, shape: Sequence[int], spacing: Sequence[float], classes: int, channels: int
) -> tuple[np.ndarray, np.ndarray]:
    """A learnable case: nested ellipsoids of classes 1..classes (radius 9 mm shrinking by 3 mm per class, the same
    in mm along every axis, so fewer voxels along the thick z), at a centre that moves with `index`; image (shape)
    or (shape + (channels,)) float32 whose intensity marks the class (HU-like: background around -100, class k around
    100 k; channel c adds 10 c) plus noise; label (shape) uint8 with classes 0..classes."""
    rng = np.random.default_rng(index)
    axes = [np.arange(n) * h for n, h in zip(shape, spacing, strict=True)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    shift = np.array([index % 3 - 1, index % 2, 0]) * 4.0
    centre = np.array([(n * h) / 2 for n, h in zip(shape, spacing, strict=True)]) + shift
    distance = np.linalg.norm(grid - centre, axis=-1)
    label = np.zeros(shape, np.uint8)
    for cls in range(1, classes + 1):
        label[distance <= 9.0 - 3.0 * (cls - 1)] = cls
    base = np.where(label > 0, 100.0 * label, -100.0) + rng.normal(0, 10, shape)
    image = np.stack([base + 10 * c for c in range(channels)], axis=-1) if channels > 1 else base
    return image.astype(np.float32), label


def write_msd(
    root: Path,
    cases: int = 5,
    labels: Sequence[str] = ("spleen",),
    channels: int = 1,
    shape: Sequence[int] = VOLUME_SHAPE,
    spacing: Sequence[float] = VOLUME_SPACING,
) -> Path:
    """A Decathlon task folder: dataset.json ("labels", "modality", "training"), imagesTr/ and labelsTr/ with
    `cases` blob volumes (4D images when `channels` > 1, as Task01_BrainTumour's)."""
    training = []
    for index in range(cases):
        name = f"case_{index:03d}.nii.gz"
        image, label = blob_case(index, shape, spacing, len(labels), channels)
        write_nifti(root / "imagesTr" / name, image, spacing)
        write_nifti(root / "labelsTr" / name, label, spacing)
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    listing = {
        "name": "Fixture",
        "labels": {"0": "background", **{str(k + 1): name for k, name in enumerate(labels)}},
        "modality": {str(c): "CT" if channels == 1 else f"MR{c}" for c in range(channels)},
        "numTraining": cases,
        "training": training,
        "test": [],
    }
    (root / "dataset.json").write_text(json.dumps(listing, indent=1))
    return root


def write_brats(
    root: Path,
    cases: int = 4,
    version: str = "2021",
    shape: Sequence[int] = VOLUME_SHAPE,
    spacing: Sequence[float] = VOLUME_SPACING,
) -> Path:
    """BraTS case folders in the 2021 (`BraTS2021_00000/BraTS2021_00000_t1.nii.gz`, seg labels 0, 1, 2, 4) or
    2023 naming (`BraTS-GLI-00000-000/BraTS-GLI-00000-000-t1n.nii.gz`, labels 0, 1, 2, 3): classes 1..3 as blobs,
    one file per modality, MRI-like: positive intensities in a "brain" with a zero surround of `BRATS_SURROUND`
    voxels in x and y, as skull-stripped BraTS volumes have."""
    separator, modalities, enhancing = BRATS_SUFFIXES[version]
    for index in range(cases):
        name = f"BraTS2021_{index:05d}" if version == "2021" else f"BraTS-GLI-{index:05d}-000"
        image, label = blob_case(index, shape, spacing, 3, 4)
        image += 200.0
        surround = np.ones(shape[:2], bool)
        surround[BRATS_SURROUND:-BRATS_SURROUND, BRATS_SURROUND:-BRATS_SURROUND] = False
        image[surround] = 0.0
        label[label == 3] = enhancing
        for channel, suffix in enumerate(modalities):
            write_nifti(root / name / f"{name}{separator}{suffix}.nii.gz", image[..., channel], spacing)
        write_nifti(root / name / f"{name}{separator}seg.nii.gz", label, spacing)
    return root


@pytest.fixture
def msd_root(tmp_path: Path) -> Path:
    return write_msd(tmp_path / "Task09_Spleen")


@pytest.fixture
def brats_root(tmp_path: Path) -> Path:
    return write_brats(tmp_path / "brats2021")


@pytest.fixture
def make_msd():
    """The Decathlon writer (`write_msd`), for tests that need more labels, channels or damage."""
    return write_msd


@pytest.fixture
def make_brats():
    return write_brats
