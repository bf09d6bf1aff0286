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
from collections.abc import Mapping
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


def endpoint_warnings(name: str, endpoint: Any, installed: Mapping) -> list:
    """What a reviewer should notice about `[providers.NAME]`, one sentence each: that it takes
    over an installed provider's prefix, that it sends a key variable other than NAME_API_KEY
    (or its type's own variables, when it keeps the type's own host: the OpenAI key sent to
    another host is a leak), or that it allows plain http. `installed` maps prefixes to the
    plugin registry's ProviderInfo. Used by `lock validate` and `llmring providers` alike."""
    url = (endpoint.base_url or "").rstrip("/")
    taken, kind = installed.get(name), installed.get(endpoint.type)
    warnings = []
    if taken is not None and url and url != _default_url(taken):
        warnings.append(f"[providers.{name}] takes over the installed provider {name!r} ({taken.package}): its "
                        f"calls go to {url} instead of {_default_url(taken) or 'its own endpoint'}.")
    usual = {f"{name.upper().replace('-', '_')}_API_KEY"}
    if kind is not None and (not url or url == _default_url(kind)):
        usual.update(getattr(kind.factory, "key_envs", None) or ())
    env = endpoint.api_key_env
    if env and env not in usual:
        warnings.append(f"[providers.{name}] sends the variable {env} as its API key, not the usual "
                        f"{' or '.join(sorted(usual))}; make sure that secret is meant for "
                        f"{url or _default_url(kind) or name}.")
    if endpoint.options.get("allow_http"):
        warnings.append(f"[providers.{name}] allows plain http (allow_http = true): its requests"
                        f"{' and ' + env if env else ''} travel unencrypted to {url or name}.")
    return warnings


def _default_url(info: Any) -> str:
    return (getattr(info.factory, "default_base_url", "") or "").rstrip("/") if info else ""
