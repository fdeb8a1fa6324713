"""CLAMBAKE_STRICT=1 (set by .ci/run): a test that skips for a missing optional program fails the run.

Runs pytest as a real process on tests/test_claude_code.py with no PATH (so neither `claude` nor npm
can be found): without strict mode its tests skip with the reason, with it they fail."""

import os
import subprocess
import sys

from conftest import REPO


def run_without_claude(strict):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAMBAKE_")}
    env["PATH"] = os.path.join(REPO, "no-such-dir")
    if strict:
        env["CLAMBAKE_STRICT"] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                           os.path.join(REPO, "tests", "test_claude_code.py"), "-k", "briefing"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_missing_claude_skips_with_the_reason():
    res = run_without_claude(strict=False)
    assert res.returncode == 0, res.stdout[-2000:]
    assert "1 skipped" in res.stdout and "npm is not installed" in res.stdout


def test_strict_mode_turns_the_skip_into_a_failure():
    res = run_without_claude(strict=True)
    assert res.returncode == 1, res.stdout[-2000:]
    # (a skip at set-up is reported as an error, one in the test body as a failure: either fails the run)
    assert ("1 error" in res.stdout or "1 failed" in res.stdout) and "skipped" not in res.stdout.splitlines()[-1]
    assert "skipped under CLAMBAKE_STRICT=1" in res.stdout and "npm is not installed" in res.stdout
