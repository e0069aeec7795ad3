"""Giving freed memory back to the operating system."""

from __future__ import annotations

__all__ = ["return_free_memory"]


def return_free_memory() -> None:
    """Give the C heap's free pages back to the OS (glibc's ``malloc_trim``).

    glibc keeps freed memory at the top of its heaps for reuse until a threshold that grows
    with the largest block freed (up to 64 MiB), so after a large request's buffers are freed
    the process may keep them resident. Elsewhere than glibc, nothing.
    """
    try:
        import ctypes  # already imported by trio

        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass
