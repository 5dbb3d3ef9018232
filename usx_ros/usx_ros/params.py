"""Declare a node's parameters once, as a typed schema; read them through typed fields.

In the spirit of generate_parameter_library: each node defines a frozen dataclass whose
fields are its parameters, each made with ``param(default, description, ...)`` (type from
the annotation; bounds, choices, list length, read-only). ``declare_params`` declares
them with full descriptors (so ``ros2 param describe`` shows ranges and descriptions),
validates the start-up values and keeps ``node.params`` an instance of the schema::

    @dataclass(frozen=True)
    class Params:
        voxel_mm: float = param(1.0, "voxel size, mm", min_value=0.1, read_only=True)

    declare_params(self, Params)
    self.params.voxel_mm  # float

An invalid start-up value raises ``ParameterError`` (one line naming the parameter, what
was expected and what arrived); run-time changes are validated the same way, refused for
read-only parameters, and once accepted ``node.params`` is replaced by a new instance.
Lists are ``tuple[float, ...]`` (or int/str) fields holding tuples.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node
from rclpy.parameter import Parameter

_TYPES = {
    bool: Parameter.Type.BOOL,
    int: Parameter.Type.INTEGER,
    float: Parameter.Type.DOUBLE,
    str: Parameter.Type.STRING,
}
_LIST_TYPES = {
    float: Parameter.Type.DOUBLE_ARRAY,
    int: Parameter.Type.INTEGER_ARRAY,
    str: Parameter.Type.STRING_ARRAY,
}
_META = "usx_param"

P = TypeVar("P")


class ParameterError(ValueError):
    """A parameter value outside its declared type, range or choices."""


@dataclass(frozen=True)
class ParamSpec:
    """One parameter, as declared to ROS.

    Attributes:
        name: parameter name.
        default: default value (a list for list parameters).
        description: one line shown by ``ros2 param describe``.
        min_value, max_value: inclusive bounds for int/float (and each list element).
        choices: allowed values for str/int parameters.
        read_only: cannot change after start-up (frames, model files, geometry).
        list_of: element type of a list parameter (None: a scalar).
        length: required list length (e.g. 3 for a translation), or None.
    """

    name: str
    default: Any
    description: str
    min_value: float | None = None
    max_value: float | None = None
    choices: tuple | None = None
    read_only: bool = False
    list_of: type | None = None
    length: int | None = None

    @property
    def kind(self) -> type:
        """Scalar type (of each element for lists)."""
        return self.list_of if self.list_of is not None else type(self.default)

    @property
    def is_list(self) -> bool:
        return self.list_of is not None

    @property
    def ros_type(self) -> Parameter.Type:
        return (_LIST_TYPES if self.is_list else _TYPES)[self.kind]

    @property
    def type_name(self) -> str:
        """``float``, ``float[3]``, ``string[]``: the type as the docs show it."""
        base = {str: "string"}.get(self.kind, self.kind.__name__)
        if not self.is_list:
            return base
        return f"{base}[{self.length if self.length is not None else ''}]"

    def descriptor(self) -> ParameterDescriptor:
        extra = []
        if self.choices:
            extra.append(f"one of {list(self.choices)}")
        if self.length is not None:
            extra.append(f"length {self.length}")
        d = ParameterDescriptor(
            name=self.name,
            type=self.ros_type.value,
            description=self.description,
            additional_constraints="; ".join(extra),
            read_only=self.read_only,
        )
        bounded = self.min_value is not None and self.max_value is not None
        if bounded and self.kind is float:
            d.floating_point_range = [
                FloatingPointRange(from_value=float(self.min_value), to_value=float(self.max_value))
            ]
        elif bounded and self.kind is int:
            d.integer_range = [
                IntegerRange(from_value=int(self.min_value), to_value=int(self.max_value), step=1)
            ]
        return d

    def check(self, value: Any) -> Any:
        """Return ``value`` as the schema holds it (ints widened to float, lists as tuples).

        Raises:
            ParameterError: wrong type, length, range or choice.
        """
        if self.is_list:
            if isinstance(value, str | bytes) or not isinstance(value, Iterable):
                raise ParameterError(f"parameter '{self.name}': expected a list, got {value!r}")
            items = list(value)
            if self.length is not None and len(items) != self.length:
                raise ParameterError(
                    f"parameter '{self.name}': expected {self.length} values, got {len(items)}"
                )
            return tuple(self._check_scalar(v) for v in items)
        return self._check_scalar(value)

    def _check_scalar(self, value: Any) -> Any:
        kind = self.kind
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ParameterError(
                f"parameter '{self.name}': expected {kind.__name__}, "
                f"got {type(value).__name__} {value!r}"
            )
        if kind is float and value != value:
            raise ParameterError(f"parameter '{self.name}': expected a number, got NaN")
        if self.min_value is not None and value < self.min_value:
            raise ParameterError(
                f"parameter '{self.name}': expected >= {self.min_value}, got {value!r}"
            )
        if self.max_value is not None and value > self.max_value:
            raise ParameterError(
                f"parameter '{self.name}': expected <= {self.max_value}, got {value!r}"
            )
        if self.choices and value not in self.choices:
            raise ParameterError(
                f"parameter '{self.name}': expected one of {list(self.choices)}, got {value!r}"
            )
        return value


def param(
    default: Any,
    description: str,
    *,
    min_value: float | None = None,
    max_value: float | None = None,
    choices: tuple | None = None,
    read_only: bool = False,
    length: int | None = None,
) -> Any:
    """One field of a parameter schema: its default, description and constraints."""
    meta = {
        "description": description,
        "min_value": min_value,
        "max_value": max_value,
        "choices": choices,
        "read_only": read_only,
        "length": length,
    }
    return dataclasses.field(default=default, metadata={_META: meta})


def _kind(annotation: Any, where: str) -> tuple[type, bool]:
    """(scalar type, is a list) of a field annotation: ``float`` or ``tuple[float, ...]``."""
    if annotation in _TYPES:
        return annotation, False
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is tuple and len(args) == 2 and args[1] is Ellipsis:
        if args[0] in _LIST_TYPES:
            return args[0], True
    raise TypeError(f"{where}: expected bool, int, float, str or tuple[T, ...], got {annotation}")


@functools.cache
def specs(schema: type) -> tuple[ParamSpec, ...]:
    """The ``ParamSpec`` of every field of ``schema`` (a frozen dataclass of ``param``s).

    Raises:
        TypeError: a field without ``param()``, of an unsupported type, or whose default
            breaks its own constraints (a programming error, found at import of the docs
            generator and by the tests).
    """
    hints = typing.get_type_hints(schema)
    out = []
    for f in dataclasses.fields(schema):
        where = f"{schema.__name__}.{f.name}"
        meta = f.metadata.get(_META)
        if meta is None:
            raise TypeError(f"{where}: declare it with param()")
        kind, is_list = _kind(hints[f.name], where)
        spec = ParamSpec(f.name, f.default, list_of=kind if is_list else None, **meta)
        try:
            default = spec.check(f.default)
        except ParameterError as exc:
            raise TypeError(f"{where}: bad default: {exc}") from None
        wrong_type = not is_list and type(f.default) is not kind  # e.g. 1 for a float
        if wrong_type or repr(default) != repr(f.default):
            fixed = kind(f.default) if wrong_type else default
            raise TypeError(f"{where}: write the default as {fixed!r}")
        out.append(dataclasses.replace(spec, default=list(default) if is_list else default))
    return tuple(out)


def defaults(schema: type[P]) -> P:
    """The schema instance holding every default (what a node gets with no overrides)."""
    return schema()


def _declare(node: Node, spec: ParamSpec) -> Any:
    if node.has_parameter(spec.name):  # a managed node configured again after cleanup
        raw = node.get_parameter(spec.name).value
        return spec.check(spec.default if raw is None else raw)
    try:
        if spec.is_list and not spec.default:
            # An empty list carries no element type: declare the type explicitly.
            param_ = node.declare_parameter(spec.name, spec.ros_type, spec.descriptor())
            raw = param_.value if param_.value is not None else spec.default
        else:
            raw = node.declare_parameter(spec.name, spec.default, spec.descriptor()).value
    except (InvalidParameterValueException, InvalidParameterTypeException, TypeError) as exc:
        # TypeError: rclpy on an override of the wrong type
        raise ParameterError(f"parameter '{spec.name}': {exc}") from exc
    return spec.check(raw)


def declare_params(node: Node, schema: type[P]) -> P:
    """Declare every parameter of ``schema`` on ``node``; set and return ``node.params``.

    After every accepted run-time change ``node.params`` is replaced by a new instance
    holding the new value; a refused change (read-only, or invalid) leaves it as it is.

    A second call on the same node (a managed node configured again after cleanup) reads
    the parameters as they are now, validates them and keeps the callbacks of the first.

    Raises:
        ParameterError: a start-up value (from YAML or overrides) is invalid.
    """
    by_name = {s.name: s for s in specs(schema)}
    values = {name: _declare(node, spec) for name, spec in by_name.items()}
    node.params = schema(**values)
    if getattr(node, "_usx_params_watched", False):
        return node.params
    node._usx_params_watched = True

    def _validate(params: list[Parameter]) -> SetParametersResult:
        for p in params:
            spec = by_name.get(p.name)
            if spec is None:
                continue
            if spec.read_only:
                return SetParametersResult(
                    successful=False, reason=f"parameter '{p.name}' is read-only"
                )
            try:
                spec.check(p.value)
            except ParameterError as exc:
                return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _apply(params: list[Parameter]) -> None:  # called once the change is made
        changes = {p.name: by_name[p.name].check(p.value) for p in params if p.name in by_name}
        if changes:
            node.params = dataclasses.replace(node.params, **changes)

    node.add_on_set_parameters_callback(_validate)
    node.add_post_set_parameters_callback(_apply)
    return node.params
