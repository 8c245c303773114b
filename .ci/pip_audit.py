"""Known vulnerabilities in the pinned requirements; `make lint` runs this.

pip-audit asks PyPI's advisory data about every pin in requirements*.txt
(production's, the sandbox's and the tools' locks), exactly those versions
(`--no-deps`: the locks pin everything that gets installed). Each lock must
carry its hashes (`--require-hashes`), and a package pinned at two versions in
two locks fails; one pinned alike in several is audited once. A known
vulnerability fails the run and names the fix. Where the advisory data
cannot be reached (no network; or a registry mirror without PyPI's JSON API,
which answers "not found" for every pin), it says so and passes: a check that
could not run is reported as skipped, never as passed.

    .venv/bin/python .ci/pip_audit.py

PIP_AUDIT names another pip-audit executable (the tests use a stand-in).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIPPED = "SKIPPED: pip-audit could not reach the advisory database"
#: What pip-audit says of a pin the advisory service does not answer for.
NOT_FOUND = "Dependency not found on PyPI"
#: Signs, in pip-audit's error output, that the service was not reached.
UNREACHABLE = (
    "ConnectionError",
    "ConnectTimeout",
    "ReadTimeout",
    "ProxyError",
    "SSLError",
    "NameResolutionError",
    "Max retries exceeded",
    "Temporary failure in name resolution",
)
#: Seconds for the whole audit; pip-audit's own socket timeout is shorter.
RUN_TIMEOUT = 300


def main() -> int:
    executable = os.environ.get("PIP_AUDIT") or str(
        Path(sys.executable).with_name("pip-audit")
    )
    requirements = sorted(ROOT.glob("requirements*.txt"))
    command = [
        executable,
        "--format",
        "json",
        "--no-deps",
        "--disable-pip",
        "--require-hashes",
        "--progress-spinner",
        "off",
        "--timeout",
        "15",
    ]
    for path in requirements:
        command += ["--requirement", str(path.relative_to(ROOT))]
    try:
        done = subprocess.run(
            command,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        print(f"{SKIPPED} (no answer within {RUN_TIMEOUT} s)")
        return 0
    try:
        report = json.loads(done.stdout)
    except ValueError:
        if any(sign in done.stderr for sign in UNREACHABLE):
            last = done.stderr.strip().splitlines()[-1][:300]
            print(f"{SKIPPED} ({last})")
            return 0
        sys.stderr.write(done.stderr)
        print(f"pip-audit failed (exit {done.returncode}); see above.")
        return done.returncode or 1

    dependencies = report.get("dependencies", [])
    vulnerable = [dep for dep in dependencies if dep.get("vulns")]
    skipped = [dep for dep in dependencies if dep.get("skip_reason")]
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fixes = ", ".join(vuln.get("fix_versions") or []) or "no fixed release"
            print(f"{dep['name']}=={dep['version']}: {vuln['id']} (fixed in {fixes})")
    if vulnerable:
        count = sum(len(dep["vulns"]) for dep in vulnerable)
        print(
            f"pip-audit: {count} known vulnerabilities in {len(vulnerable)} "
            "pinned packages: upgrade the pins named above."
        )
        return 1
    if len(skipped) == len(dependencies) > 0 and all(
        NOT_FOUND in dep["skip_reason"] for dep in skipped
    ):
        print(f"{SKIPPED} (it answered 'not found' for every pin)")
        return 0
    if skipped:
        for dep in skipped:
            print(f"{dep['name']}: {dep['skip_reason']}")
        print(f"pip-audit: {len(skipped)} pins could not be audited (see above).")
        return 1
    print(
        f"pip-audit: no known vulnerabilities in {len(dependencies)} pinned packages."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
