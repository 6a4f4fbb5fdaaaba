"""The sweep cluster: its topology (`topology.py`) and the local-process twin of docker-compose.yml (`twin.py`)."""
