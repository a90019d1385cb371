"""Before any client starts: can this process reach Kafka, trust it, and log in? One line if not.

A client that cannot bootstrap says little: kafka-python retries for its whole timeout and then
raises "Unable to bootstrap", aiokafka logs the cause at ERROR and raises "Unable to bootstrap"
too. This opens one connection exactly as aiokafka's bootstrap does (TCP, the TLS handshake,
the SASL login, one metadata request) and turns what failed into a sentence naming the
setting to check.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from aiokafka.conn import create_conn
from aiokafka.errors import (
    KafkaConnectionError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.protocol.metadata import MetadataRequest

from crm_attribution.settings.typed import KafkaSettings
from stream.kafka.security import aiokafka_args


class KafkaUnusable(RuntimeError):
    """Kafka cannot be used with these settings; the message says why in one line."""


def _servers(bootstrap: str) -> list[tuple[str, int]]:
    servers = []
    for item in bootstrap.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise KafkaUnusable(f"bootstrap server {item.strip()!r} is not host:port")
        servers.append((host.strip("[]"), int(port)))
    return servers


def explain(error: BaseException, server: str, kafka: KafkaSettings) -> str:
    """What a failed connection to ``server`` means for the settings, in one line."""
    protocol = kafka.security_protocol
    if isinstance(error, SaslAuthenticationFailed):
        return (
            f"Kafka at {server} refused the SASL login of user {kafka.sasl_username!r} with "
            f"{kafka.sasl_mechanism} ({error.args[0] if error.args else error}): check "
            "kafka.sasl_username and kafka.sasl_password (CRM_KAFKA__SASL_PASSWORD)"
        )
    if isinstance(error, UnsupportedSaslMechanismError):
        return (
            f"Kafka at {server} does not accept SASL mechanism {kafka.sasl_mechanism} ({error}): "
            "set kafka.sasl_mechanism to one it enables"
        )
    if isinstance(error, ssl.SSLCertVerificationError):
        reason = error.verify_message or str(error)
        fix = (
            "set kafka.ssl_cafile to the authority that signed the broker's certificate"
            if "hostname" not in reason.lower() and "ip address" not in reason.lower()
            else "connect by a name the certificate holds, or set kafka.ssl_check_hostname = false"
        )
        return f"Kafka at {server}: its TLS certificate is not trusted ({reason}): {fix}"
    if isinstance(error, ssl.SSLError):
        return (
            f"Kafka at {server}: the TLS handshake failed ({error.reason or error}); does that "
            f"listener speak TLS (kafka.security_protocol is {protocol})?"
        )
    if isinstance(error, ConnectionRefusedError):
        return f"nothing accepts connections at {server}: is the broker running there?"
    if isinstance(error, ConnectionResetError | KafkaConnectionError):
        return (
            f"Kafka at {server} closed the connection: its listener there expects another "
            f"security protocol than kafka.security_protocol = {protocol}"
            + (
                ", or a client certificate (kafka.ssl_certfile)"
                if kafka.uses_tls and not kafka.ssl_certfile
                else ""
            )
        )
    if isinstance(error, asyncio.TimeoutError | TimeoutError):
        return (
            f"Kafka at {server} did not answer in time: is that the broker's address, and does "
            f"its listener speak {protocol}?"
        )
    text = str(error) or type(error).__name__
    return f"cannot use Kafka at {server}: {text}"


async def probe(bootstrap: str, kafka: KafkaSettings, timeout_s: float = 10.0) -> None:
    """Connect, log in and ask for metadata on the first bootstrap server that answers.

    Raises :class:`KafkaUnusable` (one line, from the first server's failure) when none does.
    """
    args: dict[str, Any] = aiokafka_args(kafka)
    first: str | None = None
    for host, port in _servers(bootstrap):
        server = f"{host}:{port}"
        try:
            conn = await asyncio.wait_for(
                create_conn(host, port, request_timeout_ms=int(timeout_s * 1000), **args),
                timeout_s,
            )
            try:
                await asyncio.wait_for(conn.send(MetadataRequest([])), timeout_s)
            finally:
                conn.close()
            return
        except Exception as error:  # noqa: BLE001 - every failure is explained to the user
            first = first or explain(error, server, kafka)
    raise KafkaUnusable(first or f"no bootstrap server in {bootstrap!r}")


def check_kafka(bootstrap: str, kafka: KafkaSettings, timeout_s: float = 10.0) -> None:
    """:func:`probe` from synchronous code (the commands, before any client is built)."""
    asyncio.run(probe(bootstrap, kafka, timeout_s))
