"""Every storage call of a run goes through its `StorageGuard` (issue 30 row 1): read from the recorder's modules'
source, each use of the study (a call on it, or it handed to a storage function) sits inside the arguments of a
`guard.write` / `guard.call` / `guard.attempt` (directly, in a `partial` or a lambda), or in a method that is only
ever handed to the guard. A use outside (as the device/dtype attrs of epoch 1 once were) fails this test."""

from __future__ import annotations

import ast
from pathlib import Path

import afpe.search

RUN_MODULES = ("recorder.py", "checkpoint_keeper.py", "run_reports.py")  # the run's modules that touch the study
GUARD_METHODS = {"write", "call", "attempt"}
NOT_CALLS = {"__init__", "__getstate__"}  # they keep or drop the study object; they call nothing on it


def _is_guard_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in GUARD_METHODS
        and ast.unparse(node.func.value).endswith("guard")
    )


def _is_study(node: ast.AST) -> bool:
    return (isinstance(node, ast.Name) and node.id == "study") or (
        isinstance(node, ast.Attribute) and node.attr == "study" and isinstance(node.ctx, ast.Load)
    )


def unguarded_storage_uses(sources: dict[str, str]) -> tuple[list[str], int]:
    """(uses of the study outside the guard as 'module:line in method: expression', uses found in all)."""
    uses: list[tuple[str, str, ast.AST, bool]] = []  # (module, method, node, inside a guard call's arguments)
    refs: dict[str, list[tuple[str, bool]]] = {}  # method name -> (referencing method, inside a guard call)
    methods: set[str] = set()

    def walk(module: str, node: ast.AST, method: str, guarded: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner, inside = method, guarded or _is_guard_call(node) and child is not node.func
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                inner = child.name
                methods.add(inner)
            if _is_study(child) and inner not in NOT_CALLS:
                uses.append((module, inner, child, inside))
            if isinstance(child, ast.Attribute) and isinstance(child.ctx, ast.Load):
                refs.setdefault(child.attr, []).append((inner, inside))
            walk(module, child, inner, inside)

    for module, source in sources.items():
        walk(module, ast.parse(source), "<module>", False)
    guarded_methods: set[str] = set()
    changed = True
    while changed:  # a method is guarded when every reference to it is in a guard call or a guarded method
        changed = False
        for method in methods - guarded_methods:
            where = [ref for ref in refs.get(method, []) if ref[0] != method]
            if where and all(inside or user in guarded_methods for user, inside in where):
                guarded_methods.add(method)
                changed = True
    outside = [
        f"{module}:{node.lineno} in {method}: {ast.unparse(node)}"
        for module, method, node, inside in uses
        if not inside and method not in guarded_methods
    ]
    return outside, len(uses)


def test_every_storage_call_of_a_run_goes_through_the_guard() -> None:
    folder = Path(afpe.search.__file__).parent
    sources = {module: (folder / module).read_text() for module in RUN_MODULES}
    outside, found = unguarded_storage_uses(sources)
    assert found >= 10  # ask, attrs, intermediate values, tell, artifact, prune, progress, orphans...
    assert outside == []


def test_a_storage_call_outside_the_guard_is_found() -> None:
    source = """
class Recorder:
    def on_trial_result(self, live, result):
        self.guard.write(partial(set_intermediate_value, self.study, live.optuna_id, 1, 0.5))
        set_trial_user_attr(self.study, live.optuna_id, "device", result["device"])
        self.guard.write(self._tell)

    def _tell(self):
        finish_trial(self.study, 0, None, None)

    def finish(self):
        self.guard.call(self._orphans)
        self._orphans()

    def _orphans(self):
        fail_stale_trials(self.study)
"""
    outside, found = unguarded_storage_uses({"recorder": source})
    assert found == 4
    assert outside == ["recorder:5 in on_trial_result: self.study", "recorder:16 in _orphans: self.study"]
