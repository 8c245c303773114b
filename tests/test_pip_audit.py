"""`make lint`'s dependency audit (.ci/pip_audit.py) and what it concludes.

pip-audit itself is replaced by a stand-in executable (PIP_AUDIT) that
answers as pip-audit does: its JSON report, or a traceback when the advisory
service cannot be reached. The real one runs in `make lint`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.processes import BASE_DIR

SKIPPED = "SKIPPED: pip-audit could not reach the advisory database"
NOT_FOUND = "Dependency not found on PyPI and could not be audited: {} ({})"
UNREACHABLE = textwrap.dedent(
    """\
    Traceback (most recent call last):
      File "pip_audit/_service/pypi.py", line 70, in query
    requests.exceptions.ConnectionError: HTTPSConnectionPool(host='pypi.org', \
port=443): Max retries exceeded with url: /pypi/django/5.2.19/json
    """
)


def stand_in(tmp_path: Path, *, stdout: str = "", stderr: str = "", code: int = 0):
    """A pip-audit that records its arguments and answers as told."""
    script = tmp_path / "pip-audit"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"open({str(tmp_path / 'argv.json')!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
        f"sys.stdout.write({stdout!r})\n"
        f"sys.stderr.write({stderr!r})\n"
        f"sys.exit({code})\n"
    )
    script.chmod(0o755)
    return script


def run_audit(tmp_path: Path, **answer) -> subprocess.CompletedProcess:
    script = stand_in(tmp_path, **answer)
    return subprocess.run(
        [sys.executable, ".ci/pip_audit.py"],
        cwd=BASE_DIR,
        env={**os.environ, "PIP_AUDIT": str(script)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def report(*dependencies: dict) -> str:
    return json.dumps({"dependencies": list(dependencies), "fixes": []})


def test_a_vulnerable_pin_fails_and_names_the_fix(tmp_path):
    answer = report(
        {"name": "django", "version": "5.2.19", "vulns": []},
        {
            "name": "requests",
            "version": "2.31.0",
            "vulns": [
                {
                    "id": "GHSA-9wx4-h78v-vm56",
                    "fix_versions": ["2.32.0"],
                    "aliases": ["CVE-2024-35195"],
                    "description": "...",
                }
            ],
        },
    )

    result = run_audit(tmp_path, stdout=answer, code=1)

    assert result.returncode == 1
    assert "requests==2.31.0: GHSA-9wx4-h78v-vm56 (fixed in 2.32.0)" in result.stdout
    assert "1 known vulnerabilities in 1 pinned packages" in result.stdout


def test_every_requirements_file_is_audited_pin_by_pin(tmp_path):
    run_audit(tmp_path, stdout=report())

    argv = json.loads((tmp_path / "argv.json").read_text())
    files = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--requirement"]
    assert files == sorted(p.name for p in BASE_DIR.glob("requirements*.txt"))
    assert {
        "requirements.txt",
        "requirements-sandbox.txt",
        "requirements-dev.txt",
    } <= set(files)
    assert {"--no-deps", "--disable-pip", "--require-hashes"} <= set(argv)
    assert argv[argv.index("--format") + 1] == "json"


def test_no_known_vulnerability_passes(tmp_path):
    answer = report({"name": "django", "version": "5.2.19", "vulns": []})

    result = run_audit(tmp_path, stdout=answer)

    assert result.returncode == 0
    assert "no known vulnerabilities in 1 pinned packages" in result.stdout


@pytest.mark.parametrize(
    "answer",
    [
        {"stderr": UNREACHABLE, "code": 1},
        {
            "stdout": report(
                {"name": "django", "skip_reason": NOT_FOUND.format("django", "5.2.19")},
                {"name": "ruff", "skip_reason": NOT_FOUND.format("ruff", "0.17.6")},
            )
        },
    ],
    ids=["no connection", "a mirror that knows no advisories"],
)
def test_an_unreachable_advisory_database_is_skipped_out_loud(tmp_path, answer):
    result = run_audit(tmp_path, **answer)

    assert result.returncode == 0
    assert result.stdout.startswith(SKIPPED)


def test_a_pin_the_advisory_database_does_not_know_fails(tmp_path):
    answer = report(
        {"name": "django", "version": "5.2.19", "vulns": []},
        {"name": "djnago", "skip_reason": NOT_FOUND.format("djnago", "5.2.19")},
    )

    result = run_audit(tmp_path, stdout=answer)

    assert result.returncode == 1
    assert "djnago: Dependency not found on PyPI" in result.stdout


def test_any_other_failure_fails_with_pip_audit_s_own_words(tmp_path):
    result = run_audit(
        tmp_path, stderr="ERROR: requirements.txt: invalid requirement\n", code=1
    )

    assert result.returncode == 1
    assert "invalid requirement" in result.stderr
    assert SKIPPED not in result.stdout
