"""What a lockfile may make llmring do with a key, and what `lock validate` points out.

A lockfile is committed and reviewed like code, yet it can name where each prefix sends its
requests (`base_url`) and which environment variable it sends as the key (`api_key_env`). So
plain http is refused unless the host is this machine or a private network (or the table
says `allow_http = true`), and validate warns about every endpoint that redirects a
provider's prefix, reads a variable that is not the provider's usual key, or allows http.
See docs/security.md.
"""

from __future__ import annotations

import re
from typing import Any, Optional
from urllib.parse import urlsplit

# Names that never leave this machine or the local network: RFC 6761 (localhost), RFC 6762
# (mDNS .local), RFC 8375 (home.arpa) and ICANN's private-use .internal.
_LOCAL_SUFFIXES = (".localhost", ".local", ".home.arpa", ".internal")


def local_host(host: str) -> bool:
    """Loopback, private or link-local addresses, localhost and local-only names; a name
    without a dot (a Docker Compose service, a LAN host) is local too: no public DNS name has
    one."""
    import ipaddress

    host = host.lower().rstrip(".")
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host == "localhost" or "." not in host or host.endswith(_LOCAL_SUFFIXES)
    return ip.is_loopback or ip.is_private or ip.is_link_local


def base_url_problem(url: str, allow_http: bool, key_env: Optional[str]) -> str:
    """Why `url` may not be a base_url, or ""."""
    shown = re.sub(r"//[^/@]*@", "//…@", url)  # never echo a password
    bad = f"must be an http(s) URL such as https://api.example.com/v1, not {shown!r}"
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return bad
    if parts.scheme not in ("http", "https") or not host or any(c.isspace() for c in url):
        return bad
    if parts.username or parts.password:
        return "must not hold a user name or password; put the key in the variable api_key_env names"
    if parts.scheme == "http" and not allow_http and not local_host(host):
        key = f" and the key in {key_env}" if key_env else ""
        return (f"sends requests{key} unencrypted to {host}, which is not this machine or a private "
                "network; use https, or add allow_http = true to this table if you mean it")
    return ""


def usual_keys(prefix: str, factory: Any) -> tuple:
    """The key variables an endpoint is expected to read: its provider class's own, and for a
    prefix the lockfile declares, PREFIX_API_KEY."""
    return tuple(getattr(factory, "key_envs", ())) + (f"{prefix.upper().replace('-', '_')}_API_KEY",)


def endpoint_warnings(name: str, endpoint: Any, builtin: bool, factory: Any) -> list:
    """What a reviewer should know about `[providers.NAME]`: one sentence each."""
    where = endpoint.base_url or "the provider's usual address"
    warnings = []
    if builtin and endpoint.base_url:
        warnings.append(f"[providers.{name}] redirects every {name}: call to {endpoint.base_url} instead of "
                        f"the {name} API; remove base_url unless you mean to use that endpoint")
    env = endpoint.api_key_env
    if env and factory is not None and env not in usual_keys(name, factory):
        usual = ", ".join(usual_keys(name, factory))
        warnings.append(f"[providers.{name}] sends the variable {env} as its key to {where}; the usual "
                        f"variables are {usual}: make sure {env} is meant for that endpoint")
    if endpoint.options.get("allow_http"):
        warnings.append(f"[providers.{name}] allows plain http (allow_http = true): its requests"
                        f"{' and ' + env if env else ''} travel unencrypted to {where}")
    return warnings
