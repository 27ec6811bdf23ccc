"""template.yaml read as data: CloudFormation's short tags and the few intrinsics we need.

The local stack provisions from this, so names, keys, queues and wiring are written
once, in the template, and never a second time by hand.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"
_SUB_VAR = re.compile(r"\$\{([^}!]+)\}")


class _CfnLoader(yaml.SafeLoader):
    """A YAML loader that reads `!Ref X` as `{"Ref": "X"}` and `!Sub s` as `{"Fn::Sub": s}`."""


def _tag(name: str) -> Callable[[yaml.SafeLoader, yaml.Node], Any]:
    key = "Ref" if name == "Ref" else f"Fn::{name}"

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if name == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {key: value}

    return construct


for _name in (
    "Ref",
    "Sub",
    "GetAtt",
    "Join",
    "If",
    "Equals",
    "Not",
    "And",
    "Or",
    "Select",
    "Split",
    "FindInMap",
    "Base64",
    "ImportValue",
    "GetAZs",
    "Condition",
):
    _CfnLoader.add_constructor(f"!{_name}", _tag(_name))


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The template as data, a copy of its own for each caller (parsing takes 0.2 s)."""
    stat = path.stat()
    return copy.deepcopy(_parsed(path, stat.st_mtime_ns, stat.st_size))


@lru_cache(maxsize=4)
def _parsed(path: Path, _mtime_ns: int, _size: int) -> dict[str, Any]:
    """Parsed once per version of the file (its time and size are part of the key)."""
    with path.open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    return loaded


class Resolver:
    """Evaluates Ref, GetAtt, Sub, Join, If, Equals and Not against known physical values."""

    def __init__(
        self,
        template: Mapping[str, Any],
        refs: Mapping[str, str],
        attributes: Mapping[tuple[str, str], str],
        pseudo: Mapping[str, str],
        parameters: Mapping[str, str] | None = None,
    ) -> None:
        self.template = template
        self.refs = refs
        self.attributes = attributes
        self.values = dict(pseudo)
        for name, spec in template.get("Parameters", {}).items():
            self.values[name] = str((parameters or {}).get(name, spec.get("Default", "")))
        self._intrinsics = self._intrinsic_functions()

    def ref(self, name: str) -> str:
        if name in self.values:
            return self.values[name]
        if name in self.refs:
            return self.refs[name]
        raise KeyError(f"template reference {name!r} is not provisioned locally")

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template["Conditions"][name]))

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, Mapping):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            intrinsic = self._intrinsics.get(key)
            if intrinsic is not None:
                return intrinsic(arg)
        return {k: self.resolve(v) for k, v in value.items()}

    def _intrinsic_functions(self) -> dict[str, Callable[[Any], Any]]:
        """The intrinsic functions the template uses, each on its argument."""
        return {
            "Ref": self.ref,
            "Fn::GetAtt": self._get_att,
            "Fn::Sub": self._sub,
            "Fn::Join": lambda arg: str(arg[0]).join(str(v) for v in self.resolve(arg[1])),
            "Fn::Split": lambda arg: str(self.resolve(arg[1])).split(str(arg[0])),
            "Fn::Select": lambda arg: self.resolve(arg[1])[int(arg[0])],
            "Fn::Equals": lambda arg: self.resolve(arg[0]) == self.resolve(arg[1]),
            "Fn::Not": lambda arg: not self.resolve(arg[0]),
            "Fn::If": lambda arg: self.resolve(arg[1] if self.condition(arg[0]) else arg[2]),
            "Condition": self.condition,
        }

    def _get_att(self, arg: Any) -> str:
        logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
        return self.attributes[(logical, attr)]

    def _sub(self, arg: Any) -> str:
        text, local = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
        return _SUB_VAR.sub(lambda m: self._sub_var(m.group(1), local), text)

    def _sub_var(self, name: str, local: Mapping[str, Any]) -> str:
        if name in local:
            return str(local[name])
        if "." in name:
            logical, attr = name.split(".", 1)
            return self.attributes[(logical, attr)]
        return self.ref(name)


def resources_of_type(template: Mapping[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {
        name: spec
        for name, spec in template.get("Resources", {}).items()
        if spec.get("Type") == kind
    }


def function_environment(
    template: Mapping[str, Any], logical_id: str, resolver: Resolver
) -> dict[str, str]:
    """A function's variables: the Globals merged with its own, resolved."""
    merged: dict[str, Any] = dict(
        template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    )
    own = (
        template["Resources"][logical_id]["Properties"].get("Environment", {}).get("Variables", {})
    )
    merged.update(own)
    return {name: _as_env(resolver.resolve(value)) for name, value in merged.items()}


def _as_env(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
