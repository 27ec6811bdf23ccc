"""The deployable artifact, built as `sam build` builds it (functions/Makefile): its size,
what it leaves to the runtime, and that its handlers import with the tracer on."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .cold_start import DETAILED_TRACING
from .common import Result

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
LIMIT_MB = 5.0
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")


def build(into: Path) -> None:
    """The poll function's artifact as `sam build` makes it (the submit function's is the
    same)."""
    make = ["make", "-s", "-C", str(FUNCTIONS), "build-PollFunction"]
    make += [f"ARTIFACTS_DIR={into}", f"PYTHON={sys.executable}"]
    subprocess.run(make, check=True, capture_output=True)


def install_all(into: Path) -> None:
    """The baseline: every requirement installed, as a plain `sam build` would."""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "-r", str(FUNCTIONS / "requirements.txt"), "--target", str(into), "--platform",
         "manylinux2014_aarch64", "--implementation", "cp", "--python-version", "3.12",
         "--only-binary=:all:"],
        check=True, capture_output=True,
    )  # fmt: skip


def zipped_mb(folder: Path) -> float:
    archive = shutil.make_archive(str(folder) + "-zip", "zip", folder)
    return os.path.getsize(archive) / 1e6


def imports_with_tracing(folder: Path) -> bool:
    """The poll handler from the artifact, tracer on, boto3 from this interpreter as the
    runtime would give it."""
    env = {**os.environ, **DETAILED_TRACING, "PYTHONPATH": str(folder)}
    code = (
        "import lyrics_to_song.poll_handler, aws_xray_sdk, botocore, lyrics_to_song; "
        f"assert lyrics_to_song.__file__.startswith({str(folder)!r})"
    )
    return subprocess.run([sys.executable, "-c", code], env=env, check=False).returncode == 0


def run() -> list[Result]:
    with tempfile.TemporaryDirectory() as scratch:
        built, plain = Path(scratch) / "built", Path(scratch) / "plain"
        build(built)
        install_all(plain)
        size, baseline = zipped_mb(built), zipped_mb(plain)
        left_out = [name for name in RUNTIME_PROVIDED if not (built / name).exists()]
        traced = imports_with_tracing(built)
    return [
        Result(
            "artifact, zipped (functions/Makefile: no boto3 or botocore)",
            f"{size:.1f} MB; boto3, botocore, s3transfer left out: "
            f"{'yes' if len(left_out) == len(RUNTIME_PROVIDED) else 'NO'}; "
            f"imports with DetailedTracing: {'yes' if traced else 'NO'}",
            f"every requirement installed: {baseline:.1f} MB",
            f"{baseline / size:.1f}x smaller",
            f"<= {LIMIT_MB:g} MB, runtime's SDK not bundled, tracing imports",
            size <= LIMIT_MB and len(left_out) == len(RUNTIME_PROVIDED) and traced,
        )
    ]
