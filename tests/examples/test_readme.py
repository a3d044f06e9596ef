"""The README is tested: its quickstart snippets run, and CI runs its set-up commands.

Snippets are the fenced blocks that follow ``<!-- snippet: NAME -->`` markers in README.md.
The Redis snippets run as the README says (a ``celery -A proj worker`` process and a separate
trigger script), with the README's Redis URL replaced by a database of the private server.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT, SUBPROCESS_TIMEOUT_S, run_python

README = ROOT / "README.md"
README_REDIS_URL = "redis://localhost:6379/0"
DB_README = 53


def snippet(name: str) -> str:
    """The fenced code block that follows ``<!-- snippet: name -->`` in README.md."""
    pattern = rf"<!-- snippet: {re.escape(name)} -->\n```\w*\n(.*?)```"
    match = re.search(pattern, README.read_text(), re.S)
    assert match, f"README.md has no snippet {name!r}"
    return match.group(1)


def test_readme_embedded_quickstart_prints_the_completed_run(tmp_path: Path) -> None:
    """RUNS-1, TASK-31: the embedded snippet runs as written and prints what its comment says."""
    # Given the README's embedded quickstart saved as quickstart.py
    script = tmp_path / "quickstart.py"
    script.write_text(snippet("embedded"))
    # When it runs
    out = run_python(script.name, cwd=script.parent)
    # Then it prints the completed run's status and output
    assert out.strip() == "COMPLETED {'message': 'Hello, Ada!', 'attempt': 2}"


def test_readme_redis_quickstart_runs_on_a_celery_worker_process(
    tmp_path: Path, redis_server: str
) -> None:
    """RUNS-1, TASK-31: proj.py + `celery -A proj worker` + trigger.py work as the README says."""
    # Given the README's proj.py and trigger.py, pointed at a private Redis database
    url = f"{redis_server}/{DB_README}"
    project = snippet("redis-proj")
    assert README_REDIS_URL in project
    (tmp_path / "proj.py").write_text(project.replace(README_REDIS_URL, url))
    trigger = tmp_path / "trigger.py"
    trigger.write_text(snippet("redis-trigger"))
    # and a worker started with the README's command (.venv/bin is this interpreter's bin)
    command = snippet("redis-worker").split()
    assert command[0] == ".venv/bin/celery"
    command[0] = str(Path(sys.executable).parent / "celery")
    log = tmp_path / "worker.log"
    with log.open("w") as log_file:
        worker = subprocess.Popen(command, cwd=tmp_path, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            # When the trigger script runs
            proc = subprocess.run(
                [sys.executable, trigger.name],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=SUBPROCESS_TIMEOUT_S,
                check=False,
            )
        finally:
            worker.send_signal(signal.SIGTERM)  # warm shutdown, as Ctrl-C would
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
    # Then it printed the run the worker completed on its second attempt
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n"
        f"--- stderr\n{proc.stderr}\n--- worker\n{log.read_text()}"
    )
    assert proc.stdout.strip() == "COMPLETED {'message': 'Hello, Ada!', 'attempt': 2}"


def test_ci_script_runs_the_readme_setup_commands() -> None:
    """CI installs and tests exactly as the README's Set-up section tells a new developer."""
    # Given the README's two set-up commands
    setup = re.search(r"## Set-up\n.*?```bash\n(.*?)```", README.read_text(), re.S)
    assert setup, "README.md has no Set-up command block"
    commands = [line for line in setup.group(1).splitlines() if line.strip()]
    assert len(commands) == 2
    # When .ci/run is read
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    # Then it runs both commands verbatim
    for command in commands:
        assert command in ci_lines, f".ci/run does not run {command!r}"


def test_relative_links_in_readme_and_docs_point_to_existing_files() -> None:
    """Every relative link of README.md and docs/*.md names a file or folder of the repo."""
    # Given the README and every docs page
    pages = [README, *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        # When their relative link targets are resolved (anchors dropped)
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    # Then each exists
    assert not broken, "broken links:\n" + "\n".join(broken)
