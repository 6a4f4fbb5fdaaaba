"""The server-rendered dashboard (`dashboard.py`, templates in `templates/`)."""
