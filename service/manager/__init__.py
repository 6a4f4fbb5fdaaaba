"""What the service does with studies, apart from HTTP: the shipped specs it offers and the admission of a spec
within its bounds (`spec_admission.py`), the job lifecycle (`lifecycle.py`: create, cancel, resume; sharing
`study_jobs.py`, its jobs followed by `job_follower.py`, whose background tick is `reconciler.py`), the reads
(`study_reads.py` shared by `status_queries.py`, `trial_queries.py`, `downloads.py`, `plot_queries.py`,
`cross_study_queries.py`; their models in `views.py`), CSV import (`importer.py`), and the service's own table
(`records.py`). The app builds one of each (`afpe.service.app.create_app`); each route takes the few it needs
(`afpe.service.api.deps`)."""
