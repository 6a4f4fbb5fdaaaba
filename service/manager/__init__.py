"""What the service does with studies, apart from HTTP: the shipped specs it offers and the admission of a spec
within its bounds (`spec_admission.py`), the job lifecycle (`lifecycle.py`), read models (`queries.py`,
`views.py`), CSV import (`importer.py`), and the service's own table (`records.py`); `StudyManager`
(`manager.py`) holds one of each."""
