"""The webhook destination policy (forewarn/egress.py) on URLs alone: no network needed."""

from __future__ import annotations

import pytest

from forewarn.egress import DestinationRefused, EgressPolicy, check_url, redact

STRICT = EgressPolicy()
LOOPBACK_ALLOWED = EgressPolicy(allow_http=True, allow=("127.0.0.1",))

REFUSED = [
    "http://169.254.169.254/",  # cloud metadata (and http)
    "https://169.254.169.254/latest/meta-data/",
    "http://127.0.0.1:5432/",
    "https://127.0.0.1:5432/",
    "https://localhost/hook",
    "https://[::1]/",
    "https://[::ffff:127.0.0.1]/",
    "https://10.1.2.3/",
    "https://192.168.0.10/",
    "https://172.16.0.1/",
    "https://100.100.100.200/",  # shared address space (Alibaba metadata)
    "https://[fd00:ec2::254]/",  # AWS metadata over IPv6
    "https://224.0.0.1/",
    "https://0.0.0.0/",
    "https://user:pw@example.com/hook",
    "https://token@example.com/hook",
    "http://example.com/hook",  # http not allowed by default
    "ftp://example.com/",
    "https:///nohost",
    "https://example.com:99999/",
]


@pytest.mark.parametrize("url", REFUSED)
def test_refused_by_default(url: str) -> None:
    with pytest.raises(DestinationRefused):
        check_url(url, STRICT)


def test_public_https_is_accepted() -> None:
    check_url("https://hooks.example.com/services/T0/B0/x", STRICT)
    check_url("https://93.184.215.14/hook", STRICT)


def test_the_allow_list_names_internal_destinations_explicitly() -> None:
    check_url("http://127.0.0.1:5432/", LOOPBACK_ALLOWED)
    check_url("https://10.1.2.3/", EgressPolicy(allow=("10.0.0.0/8",)))
    check_url("https://localhost/", EgressPolicy(allow=("localhost",)))
    with pytest.raises(DestinationRefused):  # allowing one address allows no other
        check_url("http://169.254.169.254/", LOOPBACK_ALLOWED)
    with pytest.raises(DestinationRefused):  # nor credentials
        check_url("http://u:p@127.0.0.1/", LOOPBACK_ALLOWED)


def test_redact_keeps_scheme_host_and_port_only() -> None:
    assert redact("https://hooks.example.com/services/T0/B0/SECRET?x=1") == (
        "https://hooks.example.com/…"
    )
    assert redact("http://127.0.0.1:8080/") == "http://127.0.0.1:8080/"
    assert redact("https://u:p@[::1]:8443/a") == "https://[::1]:8443/…"
    assert redact("https://example.com:bad/") == "<invalid URL>"
