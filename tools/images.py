"""``python tools/images.py base|runner [--engine URL]``: the container lane's images, without a registry.

No image registry is reachable on these machines; the Debian archive and PyPI are. So:

* ``base``: a Debian bookworm root filesystem made by ``mmdebstrap`` (``--variant=apt`` with python3,
  python3-venv and ca-certificates: 18 s and 219 MB here; the certificate authorities this machine
  adds in ``/usr/local/share/ca-certificates`` are trusted inside too), cached as a tarball under
  ``~/.cache/xnai-qa/images/`` (one per package list), and imported into the engine as
  ``xnai-qa/base:bookworm`` (``docker import`` / ``podman import`` through the engine's API).
* ``runner``: ``docker/Dockerfile`` built on that base (``--build-arg BASE=xnai-qa/base:bookworm``, the
  build's pip on host networking, the hash-locked requirements), tagged ``xnai-qa/runner:latest``.

``--engine`` is the engine's API (default ``DOCKER_HOST`` or the Docker socket); Podman's
Docker-compatible socket works the same way. Root is needed for mmdebstrap.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv", "ca-certificates")
BASE_TAG = f"xnai-qa/base:{SUITE}"
RUNNER_TAG = "xnai-qa/runner:latest"


class ImageError(RuntimeError):
    """An image could not be made; the message says what to install or fix."""


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "xnai-qa" / "images"


LOCAL_CAS = Path("/usr/local/share/ca-certificates")


def _local_cas() -> list[Path]:
    """The certificate authorities this machine adds to Debian's (a proxy's, a company's): the base
    image trusts them too, or pip inside a build could not reach the index through that proxy."""
    return sorted(LOCAL_CAS.glob("*.crt")) if LOCAL_CAS.is_dir() else []


def base_rootfs(rebuild: bool = False) -> Path:
    """The cached root filesystem tarball of the base image, made with mmdebstrap when missing."""
    cas = _local_cas()
    material = " ".join((SUITE, *PACKAGES)).encode() + b"".join(ca.read_bytes() for ca in cas)
    key = hashlib.sha256(material).hexdigest()[:12]
    path = cache_dir() / f"{SUITE}-{key}.tar"
    if path.exists() and not rebuild:
        return path
    if not shutil.which("mmdebstrap"):
        raise ImageError(
            "mmdebstrap is not installed (Debian/Ubuntu: apt-get install mmdebstrap; ./qa test does it as root)"
        )
    if os.geteuid() != 0:
        raise ImageError("mmdebstrap needs root here to make the base image's root filesystem")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.tar")
    started = time.monotonic()
    result = subprocess.run(  # noqa: S603 - fixed arguments
        ["mmdebstrap", "--variant=apt", f"--include={','.join(PACKAGES)}",  # noqa: S607 - mmdebstrap from PATH
         *([f"--customize-hook=copy-in {' '.join(map(str, cas))} {LOCAL_CAS}",
            '--customize-hook=chroot "$1" update-ca-certificates'] if cas else []),
         SUITE, str(partial)],
        capture_output=True, text=True, timeout=900, check=False)
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise ImageError(f"mmdebstrap failed (exit {result.returncode}):\n{result.stderr[-2000:]}")
    os.replace(partial, path)
    print(f"base root filesystem: {path} ({path.stat().st_size / 2**20:.0f} MB, {time.monotonic() - started:.0f} s)")
    return path


def client(url: str | None = None):
    import docker  # noqa: PLC0415

    url = url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        engine = docker.DockerClient(base_url=url, version="auto", timeout=600)
        engine.ping()
    except Exception as err:  # noqa: BLE001 - the SDK raises several kinds
        raise ImageError(f"No container engine answers at {url} ({type(err).__name__}): start dockerd, or "
                         "'podman system service' and give its socket with --engine.") from None
    return engine


def _has(engine, tag: str) -> bool:
    import docker  # noqa: PLC0415

    try:
        engine.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def import_base(engine, rebuild: bool = False) -> str:
    """``xnai-qa/base:bookworm`` in ``engine`` (imported from the cached root filesystem if missing)."""
    if rebuild or not _has(engine, BASE_TAG):
        repository, tag = BASE_TAG.split(":")
        answer = str(engine.api.import_image_from_file(str(base_rootfs(rebuild)), repository=repository, tag=tag))
        ids = re.findall(r"sha256:[0-9a-f]{64}", answer)
        if not ids:
            raise ImageError(f"The engine did not say which image it imported: {answer[:300]}")
        engine.api.tag(ids[-1], repository, tag)  # Podman's compatible API drops the tag of an import
    return engine.images.get(BASE_TAG).id


def build_runner(engine) -> str:
    """``docker/Dockerfile`` built on the base image; returns the image id."""
    import docker  # noqa: PLC0415

    import_base(engine)
    started = time.monotonic()
    try:
        image, _logs = engine.images.build(path=str(REPO), dockerfile="docker/Dockerfile", tag=RUNNER_TAG,
                                           buildargs={"BASE": BASE_TAG}, network_mode="host", rm=True,
                                           forcerm=True)
    except docker.errors.BuildError as err:
        tail = "".join(str(chunk.get("stream") or chunk.get("error") or "") for chunk in err.build_log)[-6000:]
        raise ImageError(f"docker/Dockerfile did not build: {err.msg}\n{tail}") from None
    print(f"runner image {RUNNER_TAG} built in {time.monotonic() - started:.0f} s")
    return image.id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["base", "runner"])
    parser.add_argument("--engine", help="the engine's API URL (default: DOCKER_HOST or the Docker socket)")
    parser.add_argument("--rebuild", action="store_true", help="make the base root filesystem again")
    args = parser.parse_args()
    try:
        engine = client(args.engine)
        image = import_base(engine, args.rebuild) if args.what == "base" else build_runner(engine)
    except ImageError as err:
        print(f"images: {err}", file=sys.stderr)
        return 2
    print(image)
    return 0


if __name__ == "__main__":
    sys.exit(main())
