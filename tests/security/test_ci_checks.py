"""CI's static checks: bandit finds no high-severity issue in the application code.
`manage.py check --deploy` is tests/ops/test_deploy_check.py; pip-audit runs in
scripts/test.sh as a report that never fails the build (its advisory service may be
unreachable: this machine reaches package registries only)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bandit_reports_no_high_severity_issue() -> None:
    bandit = shutil.which("bandit") or str(Path(sys.executable).parent / "bandit")
    done = subprocess.run(
        [bandit, "-r", "samapp", "backend", "-lll", "-f", "json", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(done.stdout)
    high = [
        f"{r['filename']}:{r['line_number']} {r['test_id']} {r['issue_text']}"
        for r in report["results"]
        if r["issue_severity"] == "HIGH"
    ]
    assert high == [], high
    assert done.returncode == 0, done.stderr[-2000:]
    print(f"bandit: {report['metrics']['_totals']['loc']} lines, 0 high")
