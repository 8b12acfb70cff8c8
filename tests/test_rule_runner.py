"""How a rule's script runs its function: garbage collection paused for the imports and resumed for the work,
logging into the rule's log, and a diagnosed problem as one block and exit status 2 (connectome_bpu/rules)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import REPO

# A rule script in miniature: what Snakemake's preamble provides (``snakemake``), then the thin script's lines.
SCRIPT = """
import sys
sys.path.insert(0, {scripts!r})
from types import SimpleNamespace
snakemake = SimpleNamespace(rule="demo", log=[{log!r}], wildcards={{}})

from _package import run_rule
import gc, weakref
print("during imports:", gc.isenabled())

class Node:
    pass

def demo(smk):
    print("during the rule:", gc.isenabled())
    first, second = Node(), Node()
    first.other, second.other = second, first      # a reference cycle only the collector frees
    alive = weakref.ref(first)
    del first, second
    gc.collect()
    print("cycle freed:", alive() is None)
    if {fail!r}:
        from connectome_bpu.errors import BPUInputError
        raise BPUInputError("config key 'x' has value 3; expected a number below 2")

run_rule(snakemake, demo)
"""


def _run(tmp_path: Path, fail: bool) -> subprocess.CompletedProcess:
    log = tmp_path / "demo.log"
    code = SCRIPT.format(scripts=str(REPO / "workflow_scripts"), log=str(log), fail=fail)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_collection_is_paused_for_imports_and_resumed_for_the_rule(tmp_path):
    proc = _run(tmp_path, fail=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["during imports: False", "during the rule: True", "cycle freed: True"]
    log = (tmp_path / "demo.log").read_text()
    assert "rule demo started" in log and "rule demo finished in" in log


def test_a_diagnosed_problem_is_one_block_naming_rule_and_log_and_exits_2(tmp_path):
    proc = _run(tmp_path, fail=True)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == ["connectome-bpu: rule 'demo' stopped",
                                        "  config key 'x' has value 3; expected a number below 2",
                                        f"  (log: {tmp_path / 'demo.log'})"]
    assert "rule demo stopped: config key 'x'" in (tmp_path / "demo.log").read_text()
