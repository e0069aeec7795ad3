"""Durability: go-diskqueue compatible queues, nsqd.dat and the data-path lock, and the storage
service that commits to them (fsync groups, crash-safe mode)."""
