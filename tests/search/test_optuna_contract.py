"""The contract with Optuna's internals written atop `search/storage.py` holds on the installed Optuna: the tables
and columns the raw SQL uses exist, no column it does not write is required, the code uses no column the contract
leaves out, and the private attributes it names are there."""

from __future__ import annotations

import ast
import inspect
from collections.abc import Mapping
from pathlib import Path

import optuna
import sqlalchemy
from optuna.artifacts._upload import ARTIFACTS_ATTR_PREFIX
from optuna.storages._rdb import models

from afpe.search import trial_reads, trial_writes
from afpe.search.storage import OPTUNA_COLUMNS, open_storage, rdb_backend
from afpe.search.trial_writes import trial_id


def contract_problems(tables: Mapping[str, sqlalchemy.Table]) -> list[str]:
    """What in `tables` (an Optuna schema) breaks `OPTUNA_COLUMNS`: a table or column gone, or a column the bulk
    inserts do not write that has neither a default nor NULL (a new required column)."""
    problems = []
    for name, columns in OPTUNA_COLUMNS.items():
        if name not in tables:
            problems.append(f"table {name} is gone")
            continue
        have = tables[name].columns
        problems += [f"{name}.{column} is gone" for column in columns if column not in have]
        problems += [
            f"{name}.{column.name} is required but not written"
            for column in have
            if column.name not in columns
            and not (column.primary_key or column.nullable or column.default is not None or column.server_default)
        ]
    return problems


def test_the_installed_optuna_has_every_table_and_column_of_the_contract() -> None:
    assert contract_problems(models.BaseModel.metadata.tables) == []


def test_a_schema_that_differs_breaks_the_contract() -> None:
    changed = sqlalchemy.MetaData()
    tables = {}
    for table in models.BaseModel.metadata.tables.values():
        columns = []
        for column in table.columns:
            copy = column._copy()
            if (table.name, column.name) == ("trials", "number"):
                copy.name = copy.key = "trial_number"  # a renamed column
            columns.append(copy)
        if table.name == "trial_values":  # a new required column
            columns.append(sqlalchemy.Column("weight", sqlalchemy.Float, nullable=False))
        tables[table.name] = sqlalchemy.Table(table.name, changed, *columns)

    assert contract_problems(tables) == ["trials.number is gone", "trial_values.weight is required but not written"]


def what_the_code_uses() -> tuple[set[tuple[str, str]], set[str]]:
    """In the modules that write raw SQL: (table, column) for every `models.<Model>.<column>` and `<alias>.<column>`
    after `<alias> = models.<Model>`; and the keys of their rows to insert that are column names of Optuna's."""
    optuna_columns = {column.name for table in models.BaseModel.metadata.tables.values() for column in table.columns}
    columns, keys = set(), set()
    for module in (trial_reads, trial_writes):
        tree = ast.parse(Path(inspect.getfile(module)).read_text())
        aliases = {
            target.id: node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign) and _is_model(node.value)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                model = aliases.get(node.value.id) if isinstance(node.value, ast.Name) else node.value
                if model is not None and _is_model(model):
                    table = getattr(models, model.attr).__table__  # type: ignore[attr-defined]
                    if node.attr in table.columns:
                        columns.add((table.name, node.attr))
            if isinstance(node, ast.Dict):
                keys |= {k.value for k in node.keys if isinstance(k, ast.Constant) and k.value in optuna_columns}
    return columns, keys


def _is_model(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "models"


def test_the_code_uses_no_column_the_contract_leaves_out() -> None:
    columns, keys = what_the_code_uses()
    assert {("trials", "number"), ("trial_params", "distribution_json"), ("trial_values", "value_type")} <= columns
    assert {"datetime_start", "param_value", "value_json", "intermediate_value_type"} <= keys
    assert columns <= {(table, column) for table, names in OPTUNA_COLUMNS.items() for column in names}
    assert keys <= {column for names in OPTUNA_COLUMNS.values() for column in names}


def test_the_private_attributes_of_the_contract_exist(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 'contract.db'}")
    study = optuna.create_study(study_name="contract", storage=storage)
    trial = study.ask()
    study.tell(trial, 1.0)
    frozen = study.get_trials()[0]
    assert trial_id(trial) == trial_id(frozen) == frozen._trial_id
    assert isinstance(study._study_id, int) and rdb_backend(study._storage) is storage
    assert callable(storage._build_frozen_trial_from_trial_model)
    assert ARTIFACTS_ATTR_PREFIX == "artifacts:"
    assert models.TrialValueModel.stored_repr_to_value(*models.TrialValueModel.value_to_stored_repr(2.5)) == 2.5
    assert models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(0.5)[0] == 0.5
