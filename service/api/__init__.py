"""The REST API under /api: dependencies (`deps.py`), request/response schemas (`schemas.py`), bearer-token
check (`auth.py`), error handlers (`errors.py`) and one module of routes per resource (`routes/`)."""
