"""The front of AFPE Sweep: the `afpe` command line (every layer's commands, `serve`, `cluster`), the REST service
and dashboard (`app.py`, `api/`, `web/`), study management (`manager/`), jobs on Ray (`jobs/`), plots and the
cluster's topology (`cluster/`)."""
