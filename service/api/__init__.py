"""The REST API under /api: dependencies (`deps.py`), request/response schemas (`schemas.py`), the token and
body-size checks before a body is read (`guard.py`), the dashboard forms' token check (`auth.py`), error
handlers (`errors.py`) and one module of routes per resource (`routes/`)."""
