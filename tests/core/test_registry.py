"""The one registry convention (`afpe.core.registry`): a miss names the close names ("did you mean") and every valid
one; the registering modules are found without a list of their names."""

from __future__ import annotations

import pytest

from afpe.core.errors import USER_ERROR_EXIT_CODE, UserError
from afpe.core.parsing import parse_list
from afpe.core.registry import Registry
from afpe.encodings import list_encodings
from afpe.service.cli import main
from afpe.trainers import list_tasks


class Item:
    def __init__(self, name: str, kind: str = "plain") -> None:
        self.name, self.kind = name, kind


def test_a_miss_names_the_close_names_and_every_valid_one() -> None:
    registry: Registry[Item] = Registry("widget")
    for name in ("sincos", "fourier", "afpe"):
        registry.register(Item(name))
    with pytest.raises(ValueError, match=r"unknown widget 'fourir' \(did you mean 'fourier'\?\); valid widgets: "):
        registry.get("fourir")
    with pytest.raises(ValueError) as miss:
        registry.get("zzz")
    assert str(miss.value) == "unknown widget 'zzz'; valid widgets: sincos, fourier, afpe"


def test_registration_order_a_sort_by_trait_and_a_name_taken_twice() -> None:
    registry: Registry[Item] = Registry("widget", order=lambda item: item.kind != "first")
    for item in (Item("b"), Item("a", "first"), Item("c")):
        registry.register(item)
    assert registry.names() == ["a", "b", "c"] and registry.names(kind="plain") == ["b", "c"]
    with pytest.raises(ValueError, match="widget 'b' is registered twice"):
        registry.register(Item("b"))


def test_every_module_that_registers_is_found() -> None:
    assert list_encodings() == ["none", "learnable", "sincos", "fourier", "afpe", "lfpe", "lsfpe"]
    assert {"synthetic2d", "synthetic3d", "synthetic_video", "synthetic3d_field", "msd", "brats"} <= set(list_tasks())


def test_a_user_error_is_one_line_and_its_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UserError, match="expected a comma-separated list of ints, got '4,x'"):
        parse_list("4,x", int)
    assert parse_list("1, 0.25,") == [1.0, 0.25]
    assert main(["encodings", "plot", "--grid", "4,x", "--out", "never.html"]) == USER_ERROR_EXIT_CODE == 2
    assert capsys.readouterr().err == "afpe: error: expected a comma-separated list of ints, got '4,x'\n"
