"""Which package code decides a rule's output, found from the package's own imports.

Snakemake reruns a ``script:`` rule only when the thin script changes; the logic lives in this
package. Each rule therefore carries, as a param, a hash of the code its output depends on, derived
here rather than listed by hand (a hand-written list misses the next module that only a downstream
rule imports):

1. the rule's workflow script (``workflow_scripts/<rule>.py``) and the source of the rule function
   ``connectome_bpu.rules.<rule file>.<rule>``, plus the module-level helpers it calls;
2. every package module the function uses through an import, and, transitively, every package module
   those import (module level and inside functions alike).

Paths are hashed relative to the repository, so a clone at another path gives the same hashes.
Modules that cannot change a result are excluded, each with its reason in :data:`EXCLUDED`.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

PACKAGE = "connectome_bpu"
PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
SCRIPTS_DIR = REPO_DIR / "workflow_scripts"
# Imports found per module, keyed by the hash of its source (see module_imports); beside Python's own caches.
IMPORT_CACHE = PACKAGE_DIR / "__pycache__" / "code_deps_imports.json"

# Snakemake also reruns a ``script:`` rule whose script file is newer than its outputs. A fresh clone,
# a copy, or a second checkout gives every script a new mtime, which would rerun every job although no
# code changed. Content decides instead (scripts are part of each rule's code hash), so the scripts'
# mtimes are pinned to this instant (2000-01-01 UTC) when the workflow starts.
PINNED_SCRIPT_MTIME = 946_684_800

EXCLUDED = {
    # Which GPU a job claims decides where it runs, not what it computes.
    f"{PACKAGE}.gpu": "device claiming",
    # Routes logging into the rule's log file and formats errors; never touches an output.
    f"{PACKAGE}.rules": "logging and error reporting of rule functions",
}


def module_path(module: str) -> Path:
    """File of a package module (``connectome_bpu.sources`` -> ``connectome_bpu/sources/__init__.py``)."""
    parts = module.split(".")[1:]
    base = PACKAGE_DIR.joinpath(*parts)
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def _is_module(name: str) -> bool:
    parts = name.split(".")[1:]
    base = PACKAGE_DIR.joinpath(*parts)
    return (base / "__init__.py").is_file() or base.with_suffix(".py").is_file()


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """Absolute name of the module an ``ImportFrom`` reads from, as seen from ``module``."""
    if node.level == 0:
        return node.module or ""
    package = module if module_path(module).name == "__init__.py" else module.rsplit(".", 1)[0]
    base = package.split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imported(module: str, node: ast.AST) -> dict[str, str]:
    """{local name: package module it brings in} for one import statement (package modules only)."""
    found: dict[str, str] = {}
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.startswith(PACKAGE + ".") or alias.name == PACKAGE:
                found[alias.asname or alias.name.split(".")[0]] = alias.name
    elif isinstance(node, ast.ImportFrom):
        source = _resolve(module, node)
        if source.split(".")[0] != PACKAGE:
            return found
        for alias in node.names:
            submodule = f"{source}.{alias.name}"
            found[alias.asname or alias.name] = submodule if _is_module(submodule) else source
    return found


@lru_cache(maxsize=None)
def _source(module: str) -> bytes:
    """A module's file, read once per workflow start however many rules hash it."""
    return module_path(module).read_bytes()


@lru_cache(maxsize=None)
def _tree(module: str) -> ast.Module:
    return ast.parse(_source(module))


@lru_cache(maxsize=None)
def _import_cache() -> dict[str, dict]:
    """The imports found in earlier workflow starts, per module, with the SHA-256 of the source they were found
    in. An unreadable or malformed file counts as empty; an entry is used only when its hash matches."""
    try:
        cache = json.loads(IMPORT_CACHE.read_text())
    except (OSError, ValueError):
        return {}
    return cache if isinstance(cache, dict) else {}


def _store_imports(module: str, digest: str, imports: frozenset[str]) -> None:
    """Record one module's imports; a package that cannot be written to simply goes uncached."""
    cache = _import_cache()
    cache[module] = {"sha256": digest, "imports": sorted(imports)}
    tmp = IMPORT_CACHE.with_name(f"{IMPORT_CACHE.name}.{os.getpid()}.tmp")
    try:
        IMPORT_CACHE.parent.mkdir(exist_ok=True)
        tmp.write_text(json.dumps(cache, sort_keys=True))
        os.replace(tmp, IMPORT_CACHE)
    except OSError:
        tmp.unlink(missing_ok=True)


@lru_cache(maxsize=None)
def module_imports(module: str) -> frozenset[str]:
    """Package modules ``module`` imports anywhere in its file (parents of submodules included).

    Parsing every module costs most of a workflow start, so the answer is kept on disk
    (:data:`IMPORT_CACHE`) under the hash of the source it came from: an edited module is parsed again.
    """
    digest = hashlib.sha256(_source(module)).hexdigest()
    entry = _import_cache().get(module)
    if isinstance(entry, dict) and entry.get("sha256") == digest and isinstance(entry.get("imports"), list):
        return frozenset(entry["imports"])
    found: set[str] = set()
    for node in ast.walk(_tree(module)):
        for target in _imported(module, node).values():
            parts = target.split(".")   # importing a submodule runs its parent packages too
            found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    found.discard(module)
    imports = frozenset(m for m in found if _is_module(m))
    _store_imports(module, digest, imports)
    return imports


def closure(modules: set[str]) -> set[str]:
    """``modules``, their parent packages and every package module they import, transitively, less
    :data:`EXCLUDED` (importing a submodule runs its parent packages' ``__init__`` too)."""
    seen: set[str] = set()
    parents = {".".join(m.split(".")[:i]) for m in modules for i in range(1, m.count(".") + 1)}
    todo = [m for m in modules | parents if m not in EXCLUDED]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo += [m for m in module_imports(module) if m not in seen and m not in EXCLUDED]
    return seen


def _function_parts(module: str, function: str) -> tuple[list[str], set[str]]:
    """Source of ``function`` and the module-level helpers it reaches, and the package modules they use."""
    tree = _tree(module)
    source = _source(module).decode("utf-8")
    definitions = {node.name: node for node in tree.body
                   if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    imports: dict[str, str] = {}
    for node in tree.body:
        imports.update(_imported(module, node))
    if function not in definitions:
        raise KeyError(f"{module} has no function {function!r}")
    sources, modules, todo, seen = [], set(), [function], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        node = definitions[name]
        sources.append(ast.get_source_segment(source, node) or "")
        for inner in ast.walk(node):
            if isinstance(inner, ast.Name) and inner.id in definitions:
                todo.append(inner.id)
            elif isinstance(inner, ast.Name) and inner.id in imports:
                modules.add(imports[inner.id])
            modules.update(_imported(module, inner).values())   # imports inside the function
    return sorted(sources), modules


@lru_cache(maxsize=None)
def rule_code_hash(rule_file: str, rule: str) -> str:
    """Hash of the code that determines the output of ``rule`` (defined in ``rules/<rule_file>.smk``)."""
    module = f"{PACKAGE}.rules.{rule_file}"
    sources, modules = _function_parts(module, rule)
    digest = hashlib.sha256()
    digest.update((SCRIPTS_DIR / f"{rule}.py").read_bytes())
    for text in sources:
        digest.update(text.encode())
    for dependency in sorted(closure(modules)):
        digest.update(dependency.encode())
        digest.update(_source(dependency))
    return digest.hexdigest()[:16]


@lru_cache(maxsize=None)
def module_code_hash(module: str) -> str:
    """Hash of ``module`` and every package module it imports, transitively: for code a rule loads by name
    (a seed-system check's module), which the import walk from the rule function cannot see."""
    digest = hashlib.sha256()
    for dependency in sorted(closure({module})):
        digest.update(dependency.encode())
        digest.update(_source(dependency))
    return digest.hexdigest()[:16]


def workflow_code_hash() -> str:
    """Hash of every workflow script and package module: it changes whenever some rule's code hash does (a
    superset, for records that depend on the whole workflow's code)."""
    digest = hashlib.sha256()
    for script in sorted(SCRIPTS_DIR.glob("*.py")):
        digest.update(script.name.encode())
        digest.update(script.read_bytes())
    modules = sorted(f"{PACKAGE}." + ".".join(path.relative_to(PACKAGE_DIR).with_suffix("").parts).removesuffix(
        ".__init__") for path in PACKAGE_DIR.rglob("*.py"))
    for module in modules:
        digest.update(module.encode())
        digest.update(_source(module))
    return digest.hexdigest()[:16]


def rule_modules(rule_file: str, rule: str) -> list[str]:
    """The package modules hashed for ``rule``, sorted (for docs, debugging and tests)."""
    return sorted(closure(_function_parts(f"{PACKAGE}.rules.{rule_file}", rule)[1]))


def pin_script_mtimes() -> list[Path]:
    """Set every workflow script's mtime to :data:`PINNED_SCRIPT_MTIME`; return the ones that could not be."""
    stuck = []
    for script in sorted(SCRIPTS_DIR.glob("*.py")):
        if int(script.stat().st_mtime) == PINNED_SCRIPT_MTIME:
            continue
        try:
            os.utime(script, (PINNED_SCRIPT_MTIME, PINNED_SCRIPT_MTIME))
        except OSError:
            stuck.append(script)
    return stuck
