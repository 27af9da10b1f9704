"""Dependencies earn their pin: the hash lock matches requirements.txt, and the installed set is
consistent (pip check)."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from ..conftest import load_tool

REPO = Path(__file__).resolve().parents[2]


def _lock_tool():
    return load_tool("lock")


def test_the_hash_lock_pins_exactly_what_requirements_txt_pins():
    assert _lock_tool().check() == []


def test_the_lock_check_names_a_pin_that_drifted(tmp_path, monkeypatch):
    lock = _lock_tool()
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("requests==2.34.2\nredis==9.9.9\n")
    locked = tmp_path / "requirements.lock"
    locked.write_text("requests==2.34.2 \\\n    --hash=sha256:aa\nredis==8.1.0 \\\n    --hash=sha256:bb\nextra==1.0\n")
    monkeypatch.setattr(lock, "REQUIREMENTS", requirements)
    monkeypatch.setattr(lock, "LOCK", locked)
    problems = "\n".join(lock.check())
    assert "redis==9.9.9 is pinned in requirements.txt but the lock has 8.1.0" in problems
    assert "extra is in the lock but not in requirements.txt" in problems
    assert "extra has no hash" in problems
    assert "requests" not in problems


def test_the_installed_packages_are_consistent():
    result = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_dependency_of_the_project_is_pinned():
    """pyproject.toml names what the project needs; requirements.txt (and its lock) must pin each of them."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *(d for extra in project["optional-dependencies"].values() for d in extra)]
    pinned = set(_lock_tool().pins(REPO / "requirements.txt"))
    names = {_lock_tool().canonical(re.split(r"[\[<>=!~ ]", d, maxsplit=1)[0]) for d in wanted}
    assert sorted(names - pinned) == []
