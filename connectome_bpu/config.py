"""Configuration: schema validation with actionable messages.

The workflow calls :func:`validate_config` before it defines a single rule, so a wrong value stops
``snakemake`` (dry runs included) before any job, naming the key, the value and what is allowed.
"""

from __future__ import annotations

import copy
import difflib
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .errors import BPUInputError
from .learning_rules import learning_rule_problems
from .substrates import FLYWIRE_783_NEUROPILS
from .tasks import split_plan, task_spec

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "config.schema.yaml"

@lru_cache(maxsize=1)
def _parsed_schema() -> dict:
    """The schema, parsed once per process (libyaml's safe loader where installed: a workflow start reads it
    several times, and the pure-Python parser costs a noticeable part of that start)."""
    with open(SCHEMA_PATH, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def load_schema() -> dict:
    """A private copy of the schema: callers may fill in or edit it."""
    return copy.deepcopy(_parsed_schema())


def _key_of(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "?"
        parts.append(missing)
    return ".".join(parts) or "<top level>"


def _allowed(error: jsonschema.ValidationError) -> str:
    v, arg = error.validator, error.validator_value
    if v == "enum":
        return "one of " + ", ".join(repr(a) for a in arg)
    if v == "anyOf":
        return " or ".join(_describe(sub) for sub in arg)
    templates = {
        "minimum": "a number >= {}", "maximum": "a number <= {}", "exclusiveMinimum": "a number > {}",
        "exclusiveMaximum": "a number < {}", "type": "a value of type {}", "minItems": "a list with at least {} item(s)",
        "uniqueItems": "a list without repeated items", "pattern": "a string matching {}",
        "minLength": "a string of at least {} character(s)", "required": "this key to be present",
        "additionalProperties": "only the keys listed in schemas/config.schema.yaml",
    }
    return templates.get(v, v + " {!r}").format(arg)


def _describe(schema: dict) -> str:
    """A few words for one alternative of an ``anyOf`` (enough for the schemas used here)."""
    if "enum" in schema:
        return " or ".join(repr(v) for v in schema["enum"])
    kind = schema.get("type")
    if kind == "array" and "$ref" in schema.get("items", {}):
        return "a list of model names (see schemas/config.schema.yaml)"
    return {"null": "null", "boolean": "true or false", "array": "a list", "object": "a mapping"}.get(kind, f"a {kind}")


def _format_error(error: jsonschema.ValidationError) -> str:
    key = _key_of(error)
    if error.validator == "additionalProperties":
        return f"config key '{key}': {error.message}; allowed: {_allowed(error)}"
    if error.validator == "required":
        return f"config key '{key}' is missing; expected {_allowed(error)}"
    return f"config key '{key}' has value {error.instance!r}; allowed: {_allowed(error)}"


def coerce_command_line_values(value: Any, schema: dict) -> Any:
    """Turn strings that Snakemake's ``--config`` left inside lists (``seeds=[0,1]`` -> ``['0', '1']``)
    back into the numbers or booleans the schema asks for; anything else is left for validation."""
    kinds = schema.get("type")
    kinds = set(kinds) if isinstance(kinds, list) else {kinds}
    kinds |= {alternative.get("type") for alternative in schema.get("anyOf", [])}
    if isinstance(value, str) and "null" in kinds and value.strip().lower() in ("null", "none", "~"):
        return None
    if isinstance(value, dict):
        props = schema.get("properties", {})
        return {k: coerce_command_line_values(v, props.get(k, {})) for k, v in value.items()}
    if isinstance(value, list):
        return [coerce_command_line_values(v, schema.get("items", {})) for v in value]
    if isinstance(value, str) and kinds & {"integer", "number", "boolean"}:
        parsed = yaml.safe_load(value)
        if isinstance(parsed, (int, float)) and not ("integer" in kinds and isinstance(parsed, float)):
            return parsed
    if isinstance(value, str) and "string" in kinds and len(value) > 1 and value[0] == value[-1] == '"':
        return value[1:-1]   # a quoted list item such as "NO" (which YAML would otherwise read as false)
    return value


def schema_problems(config: dict[str, Any]) -> list[str]:
    """Every schema violation of ``config``, one line each, naming the key, the value and what is allowed."""
    validator = jsonschema.Draft202012Validator(load_schema())
    return [_format_error(e) for e in sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))]


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    """Check the shared settings against the schema; raise one error listing every problem.

    ``config`` is updated in place with command-line strings coerced to the types the schema expects,
    so the rest of the workflow sees the same values whether they came from YAML or ``--config``.
    Cross-key rules are checked per experiment, once each experiment's overrides are applied
    (:func:`connectome_bpu.experiments.resolve_experiments`).
    """
    config.update(coerce_command_line_values(dict(config), load_schema()))
    problems = schema_problems(config) or flywire_problems(config)
    if problems:
        raise BPUInputError("invalid configuration:\n  - " + "\n  - ".join(problems))
    return config


def flywire_problems(config: dict[str, Any]) -> list[str]:
    """Optic-lobe neuropils that release 783 does not have (a typo would otherwise select nothing, or less,
    and surface only in the export job). Other releases are checked there, against the file's own names."""
    if str(config["flywire"]["release"]) != "783":
        return []
    names = config["flywire"]["optic_lobe"]["neuropils"]
    unknown = [name for name in names if name not in FLYWIRE_783_NEUROPILS]
    if not unknown:
        return []
    hints = [f"{name!r} -> {close[0]!r}" for name in unknown
             if (close := difflib.get_close_matches(name.upper(), FLYWIRE_783_NEUROPILS, n=1))]
    return [f"config key 'flywire.optic_lobe.neuropils' has value {names!r}; {unknown} are not neuropils of FlyWire "
            f"release 783{' (did you mean ' + ', '.join(hints) + '?)' if hints else ''}; allowed: names from "
            f"{', '.join(FLYWIRE_783_NEUROPILS)}"]


def cross_key_problems(config: dict[str, Any]) -> list[str]:
    """Rules that span several keys of one resolved config (the schema checks keys one by one)."""
    problems = []
    k = config["graph"]["k"]
    if k["min"] > k["max"]:
        problems.append(f"config keys 'graph.k.min' ({k['min']}) and 'graph.k.max' ({k['max']}): min must be <= max")
    if config["connectome"] == "local":
        source = config.get("local_exports")
        if not source:
            problems.append("config key 'local_exports' is missing; connectome=local needs the directory that holds "
                            "neurons.csv and connections.csv (e.g. --config local_exports=/path/to/export)")
        else:
            missing = [f for f in ("neurons.csv", "connections.csv") if not (Path(source) / f).is_file()]
            if missing:
                problems.append(f"config key 'local_exports' has value {source!r}, which does not contain "
                                f"{' and '.join(missing)}; expected a directory with the export CSVs")
    if config["task"]["train"]["T"] != config["task"]["val"]["T"]:
        problems.append("config keys 'task.train.T' and 'task.val.T' must be equal (validation uses the training length)")
    problems += _lattice_problems(config)
    problems += learning_rule_problems(config)
    try:   # rules between a task's own knobs (e.g. more reversals than odours per episode) and its splits
        task_spec(config["task"])
        split_plan(config["task"])
    except BPUInputError as error:
        problems.append(str(error))
    return problems


def _lattice_problems(config: dict[str, Any]) -> list[str]:
    """The embedded optic substrate has one lamina column per ommatidium: with a one-to-one input map, its lattice
    must be the eye's (otherwise the first training job would fail on the sizes, after the whole graph cache)."""
    task = config["task"]
    if not (config["connectome"] == "synthetic_optic" and task["name"] == "optic_flow"
            and config["training"]["input_init"] == "one_to_one"):
        return []
    columns, eye = config["synthetic_optic"]["hex_rings"], task.get("optic_flow", {}).get("hex_rings")
    if eye is None or columns == eye:
        return []
    return [f"config keys 'synthetic_optic.hex_rings' ({columns}) and 'task.optic_flow.hex_rings' ({eye}) must be "
            "equal with training.input_init one_to_one: each ommatidium drives the lamina column at its lattice point"]


def substrate_name(config: dict[str, Any]) -> str:
    """The directory name under results/ that identifies the substrate."""
    if config["connectome"] == "local":
        return config.get("local_name") or "local"
    return config["connectome"]
