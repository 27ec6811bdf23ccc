"""A song's audio: where it may come from (origins.py), fetching it within its bounds
(download.py), checking it is a song (check.py), and storing it (store.py) with the
JSON beside it (sidecar.py)."""
