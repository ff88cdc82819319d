"""Iframe URLs as the host builds them: the descriptor's module URL, context filled in, signed."""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from sandbox.site.server import FakeHost
from sandbox.site.signing import signed_path

_VARIABLE = re.compile(r"\{([A-Za-z0-9_.]+)\}")


class UnknownModule(LookupError):
    """The installed app's descriptor has no such module (or the product is not installed)."""


def module_url(descriptor: dict[str, Any], module_key: str, part: str = "url") -> str:
    """A module's URL template (`part` "contextProvider": its context provider's), relative to
    the app's base URL."""
    for kind, modules in (descriptor.get("modules") or {}).items():
        if kind == "webhooks":
            continue
        for module in modules:
            if module.get("key") != module_key:
                continue
            url = module.get("url") if part == "url" else (module.get(part) or {}).get("url")
            if url:
                return str(url)
    raise UnknownModule(module_key if part == "url" else f"{module_key} {part}")


def fill(template: str, context: dict[str, str]) -> str:
    """Context variables substituted (percent-encoded); ones the host does not know are empty."""
    return _VARIABLE.sub(lambda m: quote(context.get(m.group(1), ""), safe=""), template)


def frame_src(host: FakeHost, product: str, module_key: str, context: dict[str, str],
              viewer: str | None, part: str = "url") -> str:
    """The signed path and query of one module's iframe (or context provider) for this viewer."""
    with host.lock:
        descriptor = host.descriptors.get(product)
    if descriptor is None:
        raise UnknownModule(f"{product} is not installed")
    install = host.installs[product]
    path = fill(module_url(descriptor, module_key, part), context)
    return signed_path(install.client_key, install.secret, path, viewer)
