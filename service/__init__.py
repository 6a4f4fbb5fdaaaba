"""The front of AFPE Sweep: the `afpe` command line (and, later, the REST service and dashboard)."""
