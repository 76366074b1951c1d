"""Where Forewarn may send HTTP requests it did not choose itself (webhooks, notification hooks).

A destination URL is checked twice. :func:`check_url` when it is registered: ``https`` only
(``http`` when the policy allows it), no credentials in the URL, and an IP literal must be a public
address. :func:`post` at every delivery: the host name is resolved then, every address it resolves
to must be public (not loopback, private, link-local — which holds the cloud metadata service
169.254.169.254 —, multicast, reserved or unspecified), and the request goes to the address that
was checked (no second lookup a rebinding DNS server could answer differently). Addresses and
host names named in the allow-list pass (tests use it for their loopback receiver). Redirects are
never followed, the response body is never read (only its status), and every request times out.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx

from forewarn.errors import ContractError

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
REFUSED = "destination_refused"


class DestinationRefused(ContractError):
    """The URL may not be used as a destination; the message says why."""

    def __init__(self, detail: str) -> None:
        super().__init__(REFUSED, detail)


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    allow_http: bool = False
    allow: tuple[str, ...] = ()  # host names, addresses or networks (CIDR) allowed even if internal
    timeout_s: float = 5.0

    @classmethod
    def from_settings(cls, webhooks: Any) -> EgressPolicy:
        """From ``settings.webhooks`` (allow_http, allow_hosts, timeout_s)."""
        return cls(webhooks.allow_http, tuple(webhooks.allow_hosts), webhooks.timeout_s)

    def networks(self) -> list[IpNetwork]:
        out: list[IpNetwork] = []
        for entry in self.allow:
            try:
                out.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                continue  # a host name
        return out

    def host_allowed(self, host: str) -> bool:
        return host.lower().rstrip(".") in {a.lower().rstrip(".") for a in self.allow}


def redact(url: str) -> str:
    """``scheme://host[:port]/…``: what a listing may show of a URL (paths and queries carry tokens)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<invalid URL>"
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    tail = "/…" if (parts.path not in ("", "/") or parts.query or parts.fragment) else "/"
    return f"{parts.scheme}://{netloc}{tail}"


def _public(ip: IpAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _address_allowed(ip: IpAddress, policy: EgressPolicy, networks: Iterable[IpNetwork]) -> bool:
    return _public(ip) or any(ip in n for n in networks)


def _split(url: str, policy: EgressPolicy) -> SplitResult:
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises for a bad port
    except ValueError:
        raise DestinationRefused("not a valid URL") from None
    if parts.scheme not in ("https", "http"):
        raise DestinationRefused("the URL must be https")
    if parts.scheme == "http" and not policy.allow_http:
        raise DestinationRefused("the URL must be https (http is not allowed by this deployment)")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise DestinationRefused("credentials in the URL are refused; sign with the secret")
    if not parts.hostname:
        raise DestinationRefused("the URL has no host")
    return parts


def check_url(url: str, policy: EgressPolicy) -> None:
    """Refuse a URL that can never be a destination (scheme, credentials, internal IP literal)."""
    parts = _split(url, policy)
    host = parts.hostname or ""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if host.lower().rstrip(".") in ("localhost", "localhost.localdomain") and not (
            policy.host_allowed(host)
        ):
            raise DestinationRefused("localhost is not a permitted destination") from None
        return  # a host name: resolved and checked at every delivery
    if not policy.host_allowed(host) and not _address_allowed(ip, policy, policy.networks()):
        raise DestinationRefused(f"{host} is not a public address")


def resolve(url: str, policy: EgressPolicy) -> tuple[SplitResult, IpAddress]:
    """The checked URL and the one address to connect to, or DestinationRefused."""
    parts = _split(url, policy)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DestinationRefused(f"{host} does not resolve: {exc}") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise DestinationRefused(f"{host} does not resolve")
    if not policy.host_allowed(host):
        networks = policy.networks()
        blocked = [a for a in addresses if not _address_allowed(a, policy, networks)]
        if blocked:
            raise DestinationRefused(f"{host} resolves to {blocked[0]}, not a public address")
    return parts, addresses[0]


def post(
    client: httpx.Client,
    url: str,
    policy: EgressPolicy,
    *,
    content: bytes,
    headers: dict[str, str],
) -> int:
    """POST to ``url`` under ``policy``; the response status (the body is never read).

    Raises DestinationRefused, or httpx.HTTPError when the request fails or times out.
    """
    parts, ip = resolve(url, policy)
    host = parts.hostname or ""
    literal = f"[{ip}]" if ip.version == 6 else str(ip)
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    host_header = host if parts.port is None else f"{host}:{parts.port}"
    extensions: dict[str, Any] = {"sni_hostname": host} if parts.scheme == "https" else {}
    request = client.build_request(
        "POST",
        pinned,
        content=content,
        headers={**headers, "Host": host_header},
        timeout=httpx.Timeout(policy.timeout_s),
        extensions=extensions,
    )
    response = client.send(request, stream=True, follow_redirects=False)
    response.close()  # the status is all we need: a huge or endless body is never read
    return response.status_code
