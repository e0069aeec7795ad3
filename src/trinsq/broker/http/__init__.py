"""The broker's HTTP API: the quart-trio app with nsqd's endpoints, /stats as JSON and text, and
/openapi.json."""
