"""The edges: HTTP helpers and route blueprints, the SQS worker, and the command-line tools (keys, lint).
`app.py` registers them; they parse, call one use case and shape the answer."""
