"""Kafka client security from the ``[kafka]`` settings: one factory per client library.

Every Kafka client of the project is built with the arguments one of these factories returns:
``kafka_python_args`` (kafka-python's KafkaProducer, KafkaConsumer, KafkaAdminClient),
``aiokafka_args`` (AIOKafkaProducer, AIOKafkaConsumer) and ``faust_args`` (``faust.App``, whose
consumer and producer aiokafka builds). ``tests/stream/kafka/test_security.py`` checks that no
client in the code is constructed without them. All three share one TLS context built from the
same settings, so the clients agree on what they trust.

The combination of settings is checked when they load
(``crm_attribution.settings.typed.KafkaSettings``); the files they name are checked here,
when the first client is built, each failure one line naming the setting.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any

from crm_attribution.settings.typed import KafkaSettings, SettingsError


class KafkaSecurityError(SettingsError):
    """A ``[kafka]`` TLS or SASL setting that no client can use; the message names it."""


class MaskedSecret(str):
    """A password that prints as stars: clients log their configuration (kafka-python's admin
    client does at debug level), and a dict's text shows each value's ``repr``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'**********'"


def _readable_file(setting: str, name: str) -> str:
    path = Path(name).expanduser()
    if not path.is_file():
        raise KafkaSecurityError(f"kafka.{setting} {name}: no such file")
    if not os.access(path, os.R_OK):
        raise KafkaSecurityError(f"kafka.{setting} {name}: not readable by this user")
    return str(path)


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext | None:
    """The TLS context of every client (``None`` without TLS); bad files raise one line.

    Without ``ssl_cafile`` the system's trust store is used, which is what managed Kafka's
    publicly signed certificates need.
    """
    if not kafka.uses_tls:
        return None
    cafile = _readable_file("ssl_cafile", kafka.ssl_cafile) if kafka.ssl_cafile else None
    certfile = _readable_file("ssl_certfile", kafka.ssl_certfile) if kafka.ssl_certfile else None
    keyfile = _readable_file("ssl_keyfile", kafka.ssl_keyfile) if kafka.ssl_keyfile else None
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    except (ssl.SSLError, ValueError) as error:
        raise KafkaSecurityError(
            f"kafka.ssl_cafile {cafile}: no PEM certificate could be read from it ({error})"
        ) from None
    # Verification of the chain stays on whatever the name check says.
    context.check_hostname = kafka.ssl_check_hostname
    context.verify_mode = ssl.CERT_REQUIRED
    if certfile is not None:
        try:
            context.load_cert_chain(certfile, keyfile)
        except (ssl.SSLError, ValueError) as error:
            raise KafkaSecurityError(
                f"kafka.ssl_certfile {certfile} / ssl_keyfile {keyfile or '(in the certfile)'}: "
                f"not a PEM certificate with its unencrypted private key ({error})"
            ) from None
    return context


def _common_args(kafka: KafkaSettings) -> dict[str, Any]:
    # kafka-python and aiokafka name these arguments alike.
    args: dict[str, Any] = {"security_protocol": kafka.security_protocol}
    context = ssl_context(kafka)
    if context is not None:
        args["ssl_context"] = context
    if kafka.uses_sasl:
        args["sasl_mechanism"] = kafka.sasl_mechanism
        args["sasl_plain_username"] = kafka.sasl_username
        args["sasl_plain_password"] = MaskedSecret(kafka.sasl_password.get_secret_value())
    return args


def kafka_python_args(kafka: KafkaSettings) -> dict[str, Any]:
    """Security arguments of kafka-python's KafkaProducer, KafkaConsumer and KafkaAdminClient."""
    return _common_args(kafka)


def aiokafka_args(kafka: KafkaSettings) -> dict[str, Any]:
    """Security arguments of aiokafka's AIOKafkaProducer and AIOKafkaConsumer."""
    return _common_args(kafka)


def faust_args(kafka: KafkaSettings) -> dict[str, Any]:
    """Security arguments of ``faust.App`` (``broker_credentials``), which its aiokafka
    consumer, producer and topic creation use."""
    # Imported here: Faust takes 0.3 s to import, and `produce` and the admin client, which use
    # the factories above, never need it.
    from faust.auth import SASLCredentials, SSLCredentials

    context = ssl_context(kafka)
    if kafka.uses_sasl:
        # Faust's SASLCredentials speak SASL_SSL when given a TLS context, SASL_PLAINTEXT
        # without one: the same protocol as the setting, since the context exists exactly
        # for SASL_SSL.
        return {
            "broker_credentials": SASLCredentials(
                username=kafka.sasl_username,
                password=MaskedSecret(kafka.sasl_password.get_secret_value()),
                ssl_context=context,
                mechanism=kafka.sasl_mechanism,
            )
        }
    if context is not None:
        return {"broker_credentials": SSLCredentials(context)}
    return {}
