"""Study jobs: the `JobBackend` protocol the study lifecycle talks to (`backend.py`), its Ray Jobs
implementation (`ray_jobs.py`) and the private local Ray head it starts when no cluster is given
(`local_head.py`)."""
