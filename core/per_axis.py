"""`PerAxis`, the one pydantic type of "a scalar or one value per axis" (every per-axis option of a task, the
model's patch size).

`PerAxis` reads alike a YAML list (`patch: [4, 8, 8]`), a scalar (`patch: 4`, every axis), a comma string
(`"4,8,8"`, as `--set task_options.patch=4,8,8` and JSON bodies send it) and `--option patch=4,8,8` (already a
list). A scalar (or a one-item string) stands for every axis: `count` copies when the count is fixed (MONAI's
`ensure_tuple_rep`), else one value the consumer spreads; a list must have the count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, get_args

from pydantic import GetCoreSchemaHandler, ValidationInfo
from pydantic_core import core_schema

from afpe.core.parsing import comma_items


@dataclass(frozen=True)
class PerAxis:
    """Marks a `list[int]` or `list[float]` field as a scalar or one value per axis:
    `patch: Annotated[list[int], PerAxis(axes=("time", "height", "width"), ge=1)]`.

    `axes`: the fixed number of values, or their axis names (named in messages); None takes one or more (the
    consumer checks the count). Bounds `ge`/`gt`/`le`/`lt` hold for every value; floats must be finite. A
    refusal is one ValueError naming the field, the count, the bounds and the value given."""

    axes: int | tuple[str, ...] | None = None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    @property
    def count(self) -> int | None:
        return len(self.axes) if isinstance(self.axes, tuple) else self.axes

    def spread(self, value: Any) -> Any:
        """A comma string -> its items; a scalar (or a one-item string) -> `count` copies (one when not fixed)."""
        if isinstance(value, str):
            items = comma_items(value)
            value = items[0] if len(items) == 1 else items
        if isinstance(value, int | float | str):
            return [value] * (self.count or 1)
        return value

    def check(self, value: list[Any], info: ValidationInfo) -> list[Any]:
        """`value` when its count and every item fit; ValueError describing what does otherwise."""
        count = self.count
        if (len(value) != count if count else not value) or not all(self._fits(item) for item in value):
            raise ValueError(f"{info.field_name or 'value'} needs {self.describe()}, got {value}")
        return value

    def _fits(self, item: float) -> bool:
        return (
            math.isfinite(item)
            and (self.ge is None or item >= self.ge)
            and (self.gt is None or item > self.gt)
            and (self.le is None or item <= self.le)
            and (self.lt is None or item < self.lt)
        )

    def describe(self) -> str:
        """E.g. "3 values >= 1 (time, height, width)", "3 values in (0, 10] (d0, d1, d2)" or "1 or more values
        >= 1 (one per axis)"."""
        number = f"{self.count} values" if self.count else "1 or more values"
        names = f"({', '.join(self.axes)})" if isinstance(self.axes, tuple) else "(one per axis)"
        return " ".join(part for part in (number, self._bounds(), names) if part)

    def _bounds(self) -> str:
        low = f"[{self.ge:g}" if self.ge is not None else None if self.gt is None else f"({self.gt:g}"
        high = f"{self.le:g}]" if self.le is not None else None if self.lt is None else f"{self.lt:g})"
        if low and high:
            return f"in {low}, {high}"
        if low:
            return f"{'>=' if self.ge is not None else '>'} {low[1:]}"
        if high:
            return f"{'<=' if self.le is not None else '<'} {high[:-1]}"
        return ""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        """The list's own schema (items converted by pydantic) between `spread` and `check`; its JSON schema
        takes a scalar, a list or a comma string."""
        schema = handler(source)
        (item,) = get_args(source) or (float,)
        item_schema = handler.generate_schema(item)
        return core_schema.no_info_before_validator_function(
            self.spread,
            core_schema.with_info_after_validator_function(self.check, schema),
            json_schema_input_schema=core_schema.union_schema([item_schema, schema, core_schema.str_schema()]),
        )
