"""What the broker and the registry share: Go-style flags and durations, the HTTP plumbing
(quart-trio on hypercorn), an HTTP client, JSON in Go's manner, logging, start-up and
foreground running. Nothing here imports a role."""
