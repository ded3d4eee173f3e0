"""`framewire run`: the command-line side of the Python client. It streams a video through a
realtime session (framewire.client) against a server at `--url` or one embedded in the same
process (framewire.run.embedded), and can generate the demo clip (framewire.run.demo)."""
