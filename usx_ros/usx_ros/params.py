"""Declare a node's parameters once: type, default, description, bounds, read-only.

In the spirit of generate_parameter_library: each node lists ``ParamSpec`` entries;
``declare_params`` declares them with full descriptors (so ``ros2 param describe``
shows ranges and descriptions), validates the start-up values and returns them as a
plain dict that the node passes on to the core. An invalid value at start-up raises
``ParameterError`` naming the parameter, what was expected and what arrived; run-time
changes are validated the same way and refused (read-only ones always).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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


class ParameterError(ValueError):
    """A parameter value outside its declared type, range or choices."""


@dataclass(frozen=True)
class ParamSpec:
    """One parameter.

    Attributes:
        name: parameter name (dots allowed for grouping).
        default: default value; its Python type is the parameter type. For lists give
            ``list_of`` and a (possibly empty) list.
        description: one line shown by ``ros2 param describe``.
        min_value, max_value: inclusive bounds for int/float (and each list element).
        choices: allowed values for str/int parameters.
        read_only: cannot change after start-up (frames, topics, model files).
        list_of: element type for list parameters.
        length: required list length (e.g. 16 for a 4x4 matrix), or None.
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
    def ros_type(self) -> Parameter.Type:
        if self.list_of is not None:
            return _LIST_TYPES[self.list_of]
        return _TYPES[type(self.default)]

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
        scalar = self.list_of or type(self.default)
        bounded = self.min_value is not None and self.max_value is not None
        if bounded and scalar is float:
            d.floating_point_range = [
                FloatingPointRange(from_value=float(self.min_value), to_value=float(self.max_value))
            ]
        elif bounded and scalar is int:
            d.integer_range = [
                IntegerRange(from_value=int(self.min_value), to_value=int(self.max_value), step=1)
            ]
        return d

    def check(self, value: Any) -> Any:
        """Return ``value`` (ints widened to float for float parameters) or raise."""
        if self.list_of is not None:
            items = list(value)
            if self.length is not None and len(items) != self.length:
                raise ParameterError(
                    f"parameter '{self.name}': expected {self.length} values, got {len(items)}"
                )
            return [self._check_scalar(v, self.list_of) for v in items]
        return self._check_scalar(value, type(self.default))

    def _check_scalar(self, value: Any, kind: type) -> Any:
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


def declare_params(node: Node, specs: Sequence[ParamSpec]) -> dict[str, Any]:
    """Declare every spec on ``node``; return {name: validated value}.

    Raises:
        ParameterError: a start-up value (from YAML or overrides) is invalid.
    """
    values: dict[str, Any] = {}
    by_name = {s.name: s for s in specs}
    for spec in specs:
        try:
            if spec.list_of is not None and not spec.default:
                # An empty list carries no element type: declare the type explicitly.
                param = node.declare_parameter(spec.name, spec.ros_type, spec.descriptor())
                raw = param.value if param.value is not None else spec.default
            else:
                raw = node.declare_parameter(spec.name, spec.default, spec.descriptor()).value
        except (InvalidParameterValueException, InvalidParameterTypeException) as exc:
            raise ParameterError(f"parameter '{spec.name}': {exc}") from exc
        except TypeError as exc:  # rclpy: override of the wrong type
            raise ParameterError(f"parameter '{spec.name}': {exc}") from exc
        values[spec.name] = spec.check(raw)

    def _on_set(params: list[Parameter]) -> SetParametersResult:
        for p in params:
            spec = by_name.get(p.name)
            if spec is None:
                continue
            if spec.read_only:
                return SetParametersResult(successful=False, reason=f"'{p.name}' is read-only")
            try:
                values[p.name] = spec.check(p.value)
            except ParameterError as exc:
                return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(_on_set)
    return values
