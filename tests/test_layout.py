"""The layout a newcomer relies on: each rule reaches the function that does its work in one hop."""

from __future__ import annotations

import importlib
import json
import re

import pytest

from connectome_bpu import code_deps
from connectome_bpu.code_deps import PACKAGE_DIR, module_imports
from connectome_bpu.seed_checks import CHECKS, check_module
from conftest import REPO

RULE = re.compile(r"^rule (\w+):\n(.*?)(?=^rule |\Z)", re.S | re.M)


def _rules_with_scripts() -> list[tuple[str, str, str]]:
    """(rule file stem, rule name, rule body) of every rule that runs a script."""
    found = []
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for name, body in RULE.findall(smk.read_text()):
            if "script:" in body:
                found.append((smk.stem, name, body))
    return found


def test_every_script_rule_is_found_by_its_name():
    rules = _rules_with_scripts()
    assert len(rules) >= 19
    for stem, name, body in rules:
        assert f'"../workflow_scripts/{name}.py"' in body, (stem, name)
        assert f'"../envs/{stem}.yaml"' in body, (stem, name)
        script = (REPO / "workflow_scripts" / f"{name}.py").read_text()
        assert f"from connectome_bpu.rules.{stem} import {name}\n" in script, name
        assert callable(getattr(importlib.import_module(f"connectome_bpu.rules.{stem}"), name))
        if name != "flywire_file":            # a download's content is fixed by its checksum, not by code
            assert f'code=rule_code_hash("{stem}", "{name}")' in body, name


def test_one_conda_environment_per_rule_file():
    stems = {smk.stem for smk in (REPO / "rules").glob("*.smk")} - {"common"}
    assert {env.stem for env in (REPO / "envs").glob("*.yaml")} == stems


@pytest.mark.parametrize("path", sorted(p.name for p in (REPO / "rules").glob("*.smk")) + ["../Snakefile"])
def test_no_lambdas_in_the_workflow(path):
    assert "lambda" not in (REPO / "rules" / path).read_text()


def test_the_core_never_imports_the_report_layer_or_the_rules():
    for path in PACKAGE_DIR.rglob("*.py"):
        module = "connectome_bpu." + ".".join(path.relative_to(PACKAGE_DIR).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        if module.startswith(("connectome_bpu.reports", "connectome_bpu.rules")):
            continue
        layered = {m for m in module_imports(module) if m.startswith(("connectome_bpu.reports", "connectome_bpu.rules"))}
        assert not layered, (module, layered)


def test_a_seed_check_module_loaded_by_name_has_its_own_code_hash():
    """The import walk from a rule function cannot see a module loaded by name; the seed-check rules carry
    that module's hash as a param, so editing one check reruns that check and no other."""
    per_seed = code_deps.rule_modules("learning_rules", "seed_check_seed")
    assert "connectome_bpu.line_drawing" not in per_seed
    assert "connectome_bpu.seed_check_report" not in per_seed    # editing a verdict never reruns a seed
    assert "connectome_bpu.line_drawing" in code_deps.closure({check_module("line_drawing")})
    hashes = {code_deps.module_code_hash(check_module(name)) for name in CHECKS}
    assert len(hashes) == len({check.module for check in CHECKS.values()})
    body = (REPO / "rules" / "learning_rules.smk").read_text()
    assert body.count("check_code=seed_check_code,") == 2


@pytest.fixture
def import_cache(tmp_path, monkeypatch):
    """code_deps' on-disk import cache redirected to a scratch file, with its in-process caches emptied."""
    def forget():
        code_deps.module_imports.cache_clear()
        code_deps._import_cache.cache_clear()

    monkeypatch.setattr(code_deps, "IMPORT_CACHE", tmp_path / "imports.json")
    forget()
    yield tmp_path / "imports.json", forget
    forget()


def test_the_import_cache_is_trusted_only_for_the_source_it_was_made_from(import_cache):
    path, forget = import_cache
    module = "connectome_bpu.seed_check_report"
    found = code_deps.module_imports(module)
    entry = json.loads(path.read_text())[module]
    assert entry["imports"] == sorted(found) and "connectome_bpu.results" in found

    def rewrite(text: str) -> frozenset[str]:
        path.write_text(text)
        forget()
        return code_deps.module_imports(module)

    planted = {module: {**entry, "imports": ["connectome_bpu.gpu"]}}
    assert rewrite(json.dumps(planted)) == {"connectome_bpu.gpu"}          # same source hash: the entry is used
    planted[module]["sha256"] = "0" * 64
    assert rewrite(json.dumps(planted)) == found                           # another source: parsed again
    assert rewrite("{not json") == found                                   # a corrupt cache is ignored ...
    assert json.loads(path.read_text())[module]["imports"] == sorted(found)   # ... and written afresh
