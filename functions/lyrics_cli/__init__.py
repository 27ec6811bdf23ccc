"""The `lyrics-to-song` command: submit lyrics, follow jobs and fetch songs from a stack."""
