"""The demo's calls to the sandbox site's /_sandbox/ endpoints (sandbox/site/control.py)."""
from __future__ import annotations

from typing import Any

import requests

TIMEOUT = (2.0, 15.0)  # connect, read
INSTALL_TIMEOUT = (2.0, 120.0)  # the site waits for the app to store both installs


class SiteUnavailable(RuntimeError):
    """The sandbox site did not answer (or answered 5xx)."""


class NotOnSite(LookupError):
    """The site has no such issue, page, module or product (its 404)."""


class SiteClient:
    """One sandbox site, by its URL."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _call(self, method: str, path: str, timeout: tuple[float, float] = TIMEOUT,
              **kwargs: Any) -> Any:
        try:
            response = requests.request(method, f"{self.url}/_sandbox{path}", timeout=timeout,
                                        **kwargs)
        except requests.RequestException as exc:
            raise SiteUnavailable(f"the sandbox site at {self.url} did not answer") from exc
        if response.status_code == 404:
            raise NotOnSite(response.json().get("message", "not found"))
        if response.status_code != 200:
            raise SiteUnavailable(f"the sandbox site answered {response.status_code}: "
                                  f"{response.text[:300]}")
        return response.json()

    def install(self, app_url: str) -> dict[str, str]:
        """Have the site install the app into Jira and Confluence; product -> clientKey."""
        return self._call("POST", "/install", timeout=INSTALL_TIMEOUT,
                          json={"app_url": app_url})["installed"]

    def catalog(self) -> dict[str, Any]:
        """Installs, projects, issues and pages to pick, people to act as, admins."""
        return self._call("GET", "/catalog")

    def issue(self, key: str) -> dict[str, Any]:
        """An issue as the demo shows it."""
        return self._call("GET", f"/issues/{key}")

    def page(self, page_id: str) -> dict[str, Any]:
        """A page as the demo shows it."""
        return self._call("GET", f"/pages/{page_id}")

    def frame(self, product: str, module: str, viewer: str | None, context: dict[str, str],
              part: str = "url") -> str:
        """The signed src of one module's iframe for the viewer (`context`: issue.key, ...);
        `part` "contextProvider" signs the module's context provider URL instead."""
        params = {**context, "part": part, **({"as": viewer} if viewer else {})}
        return self._call("GET", f"/frame/{product}/{module}", params=params)["src"]

    def token(self, product: str, viewer: str | None) -> str:
        """A context token (what AP.context.getToken() returns) for the viewer."""
        return self._call("GET", f"/token/{product}", params={"as": viewer} if viewer else {})[
            "token"]

    def activity(self) -> dict[str, Any]:
        """The comments, links and notifications the app sent to the site."""
        return self._call("GET", "/activity")
