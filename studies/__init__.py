"""The shipped study specs: YAML data installed as the package `afpe.studies` (found by `afpe.search.shipped_specs`)."""
