"""The broker's TLS settings (nsqd/nsqd.go buildTLSConfig, apps/nsqd/options.go)."""

from __future__ import annotations

import ssl
import warnings
from typing import Final

from ._options import BrokerOptions, OptionError

__all__ = ["build_server_context", "tls_version_name"]

_MIN_VERSIONS: Final = {
    "tls1.0": ssl.TLSVersion.TLSv1,
    "tls1.1": ssl.TLSVersion.TLSv1_1,
    "tls1.2": ssl.TLSVersion.TLSv1_2,
    "tls1.3": ssl.TLSVersion.TLSv1_3,
}
_VERSION_NAMES: Final = {
    "TLSv1": "TLS1.0",
    "TLSv1.1": "TLS1.1",
    "TLSv1.2": "TLS1.2",
    "TLSv1.3": "TLS1.3",
}


def build_server_context(
    options: BrokerOptions, *, require_client_cert: bool = False
) -> ssl.SSLContext | None:
    """The server side of TCP TLS upgrades and HTTPS; None when no cert and key are set.

    ``require_client_cert`` demands a verified client certificate whatever the policy (the
    HTTPS listener with --http-admin-client-cert).

    ``require`` and ``require-verify`` both demand a client certificate that verifies against
    ``--tls-root-ca-file`` (or the system roots). Go's ``require`` takes any certificate,
    verified or not; Python's ssl module cannot request a certificate without verifying it.

    Raises:
        OptionError: the cert, key or CA file cannot be loaded.
    """
    if not options.tls_enabled:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        # nsqd's default minimum is TLS 1.0, which Python deprecates: allowed on purpose, as
        # asked for (the OpenSSL build may still refuse it).
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = _MIN_VERSIONS[options.tls_min_version]
    try:
        context.load_cert_chain(options.tls_cert, options.tls_key)
        verify = bool(options.tls_client_auth_policy) or require_client_cert
        if verify:
            if options.tls_root_ca_file:
                context.load_verify_locations(options.tls_root_ca_file)
            else:
                context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    except (OSError, ssl.SSLError) as error:
        raise OptionError(f"failed to build TLS config - {error}") from None
    if verify:
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def tls_version_name(version: str | None) -> str:
    """nsqd's name for a negotiated protocol version, e.g. ``TLS1.2``."""
    return _VERSION_NAMES.get(version or "", version or "")
