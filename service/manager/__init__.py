"""What the service does with studies, apart from HTTP: the shipped-spec catalog and bounds (`catalog.py`),
the job lifecycle (`lifecycle.py`), read models (`queries.py`, `views.py`), CSV import (`importer.py`), and
the service's own table (`records.py`); `StudyManager` (`manager.py`) holds one of each."""
