"""The guard for callback URLs that arrive in a request: notifyd will later POST to them, so a client
must not be able to aim that POST at loopback, the LAN or a cloud metadata service.

`check_callback_url` says yes or no when the URL is registered; `pinned_request_args` is used when
delivering, so the connection goes to an address that was checked at that moment (a name cannot
resolve to a public address for the check and a private one for the connect).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable

import httpx

from notifyd.errors import NotifydError

Resolver = Callable[[str, int], list[str]]

ALLOW_HINT = "set [runs] allow_private_callbacks = true to allow it"
# Never a sensible destination, whatever the operator allows.
# Cloud metadata stays forbidden even when private callbacks are allowed: a client that may reach
# the LAN must still not read the machine's own credentials.
ALWAYS_FORBIDDEN = frozenset({"unspecified", "multicast", "cloud metadata"})
DEFAULT_PORTS = {"http": 80, "https": 443}
AUTHORITY = re.compile(r"^[^:/?#]*:?//([^/?#]*)")

# Instance metadata services hand out credentials; some sit in ranges that are otherwise allowed.
METADATA = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",     # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle
    "169.254.170.2",       # AWS ECS task credentials
    "169.254.170.23",      # AWS EKS Pod Identity
    "fd00:ec2::23",        # AWS EKS Pod Identity over IPv6
    "fd00:ec2::254",       # AWS IMDS over IPv6
    "fd20:ce::254",        # GCP metadata over IPv6
    "100.100.100.200",     # Alibaba Cloud
    "168.63.129.16",       # Azure WireServer (public space, reachable only inside Azure)
))
THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")          # only valid as a source address
CGNAT = ipaddress.ip_network("100.64.0.0/10")
UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
SITE_LOCAL = ipaddress.ip_network("fec0::/10")             # deprecated, still routed on some LANs
RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
DOCUMENTATION = tuple(ipaddress.ip_network(n) for n in (
    "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "198.18.0.0/15",
    "2001:db8::/32", "3fff::/20", "2001:2::/48",
))
BROADCAST = ipaddress.ip_address("255.255.255.255")
# Special-purpose blocks that Python 3.11's is_global does not know about.
RESERVED = tuple(ipaddress.ip_network(n) for n in ("192.0.0.0/24", "192.88.99.0/24"))
GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class CallbackRefused(NotifydError):
    """A callback URL notifyd will not call; `reason` names the host and why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"callback URL refused: {reason}")


def is_forbidden(ip: str) -> str | None:
    """None if notifyd may call this address, else a short reason ("loopback", "private", …).

    Raises ValueError if `ip` is not an IP address. IPv6 forms that embed an IPv4 address
    (::ffff:a.b.c.d, 6to4, NAT64, a Teredo client) are judged by the address they carry.
    """
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.scope_id:
            # Set lookups compare the scope too; the scope never makes an address safer.
            addr = ipaddress.IPv6Address(str(addr).partition("%")[0])
        carried = _carried_ipv4(addr)
        if carried is not None:
            return is_forbidden(str(carried))
        if addr.teredo is not None:
            reason = is_forbidden(str(addr.teredo[1]))
            if reason:
                return reason
    if addr.is_unspecified or addr in THIS_NETWORK:
        return "unspecified"
    if addr.is_multicast:
        return "multicast"
    if addr in METADATA:
        return "cloud metadata"
    if addr.is_loopback:
        return "loopback"
    if addr.is_link_local:
        return "link-local"
    if addr in CGNAT:
        return "carrier-grade NAT"
    if addr in UNIQUE_LOCAL:
        return "unique local"
    if addr in SITE_LOCAL:
        return "site-local"
    if any(addr in net for net in RFC1918):
        return "private"
    if any(addr in net for net in DOCUMENTATION if net.version == addr.version):
        return "documentation/benchmark"
    if addr == BROADCAST:
        return "broadcast"
    if addr.is_reserved or addr.is_private or not addr.is_global or any(addr in n for n in RESERVED):
        return "reserved"
    if addr.version == 6 and addr not in GLOBAL_UNICAST_V6:
        return "reserved"
    return None


def default_resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to for a TCP connection, unique, in resolver order.

    An IP literal is returned as it is, without asking DNS. Raises OSError when it cannot resolve.
    """
    literal = _ip_literal(host)
    if literal is not None:
        return [literal]
    addresses: list[str] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def pick_address(host: str, port: int, allow_private: bool, resolve: Resolver = default_resolve) -> str:
    """The one address to connect to for `host`: the first allowed, IPv4 preferred.

    Raises CallbackRefused if `host` does not resolve, or if any address it resolves to is not
    allowed (a name with one public and one private address is refused, not half-used).
    An IP literal is judged as it is; `resolve` is asked only about names.
    """
    literal = _ip_literal(host)
    try:
        addresses = [literal] if literal is not None else list(resolve(host, port))
    except (OSError, UnicodeError, ValueError):
        raise CallbackRefused(f"cannot resolve {host}") from None
    if not addresses:
        raise CallbackRefused(f"cannot resolve {host}")
    for address in addresses:
        try:
            reason = is_forbidden(address)
        except ValueError:
            raise CallbackRefused(f"{host} resolved to {address!r}, which is not an IP address") from None
        if reason and (reason in ALWAYS_FORBIDDEN or not allow_private):
            raise CallbackRefused(_refusal(host, address, reason, hint=reason not in ALWAYS_FORBIDDEN))
    ipv4 = [a for a in addresses if ipaddress.ip_address(a).version == 4]
    return (ipv4 or addresses)[0]


def check_callback_url(url: str, allow_private: bool, resolve: Resolver = default_resolve) -> None:
    """Return if notifyd may POST to `url`, else raise CallbackRefused saying why.

    The URL must be http or https, name a host, carry no user:password@, have a port in 1..65535,
    and every address its host resolves to must be allowed (see `is_forbidden`; `allow_private`
    allows everything but unspecified and multicast addresses).
    """
    _, host, port = _parse(url)
    pick_address(host, port, allow_private, resolve)


def pinned_request_args(url: str, allow_private: bool,
                        resolve: Resolver = default_resolve) -> tuple[str, dict[str, str], dict]:
    """(url, headers, extensions) for httpx that connect to the address checked now, not re-resolved.

    The URL has the host replaced by that address; headers carry the original Host; for https the
    `sni_hostname` extension makes httpx send the original name in SNI and check the certificate
    against it. Raises CallbackRefused as `check_callback_url` does.
    """
    parsed, host, port = _parse(url)
    address = pick_address(host, port, allow_private, resolve)
    pinned = parsed.copy_with(host=address.replace("%", "%25"))    # RFC 6874 zone id
    host_header = f"[{host}]" if ":" in host else host
    if parsed.port is not None:
        host_header += f":{parsed.port}"
    extensions = {"sni_hostname": host} if parsed.scheme == "https" else {}
    return str(pinned), {"Host": host_header}, extensions


def _parse(url: str) -> tuple[httpx.URL, str, int]:
    """The URL parsed the way httpx will send it, its ASCII host and its port; or CallbackRefused."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise CallbackRefused(f"not a valid URL ({exc})") from None
    host = parsed.raw_host.decode("ascii")
    where = host or "the URL"
    if parsed.scheme not in DEFAULT_PORTS:
        scheme = f"scheme {parsed.scheme!r}" if parsed.scheme else "no scheme"
        raise CallbackRefused(f"{where} has {scheme}; only http and https are allowed")
    if not host:
        raise CallbackRefused("the URL has no host")
    # httpx drops an empty "@" and reads "a\@b" as userinfo; refuse any "@" before the host.
    authority = AUTHORITY.match(str(url))
    if parsed.userinfo or (authority and "@" in authority.group(1)):
        raise CallbackRefused(f"{host}: a user name or password in the URL is not allowed")
    port = parsed.port
    if port is not None and not 1 <= port <= 65535:
        raise CallbackRefused(f"{host}: port {port} is out of range (1-65535)")
    return parsed, host, port or DEFAULT_PORTS[parsed.scheme]


def _ip_literal(host: str) -> str | None:
    """`host` as a normalised IP address string if it is one (brackets and %25 zone allowed)."""
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return str(ipaddress.ip_address(text.replace("%25", "%")))
    except ValueError:
        return None


def _carried_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, 6to4 or well-known-prefix NAT64 address stands for."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr in NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def _refusal(host: str, address: str, reason: str, hint: bool) -> str:
    article = "an" if reason[0] in "aeio" or reason == "unspecified" else "a"
    if _ip_literal(host) == _ip_literal(address):
        text = f"{host} is {article} {reason} address"
    else:
        text = f"{host} resolves to {address}, {article} {reason} address"
    return f"{text} ({ALLOW_HINT})" if hint else text
