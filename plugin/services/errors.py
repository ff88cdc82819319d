"""The one error services raise for a request they refuse; the API turns it into a 4xx."""
from __future__ import annotations


class Refused(Exception):
    """A request the domain refuses: status (403/404/409/422/429), message, optional field."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field

    def payload(self) -> dict[str, object]:
        """The JSON body the API returns."""
        # A missing object is "not_found" like a missing route (docs/reference.md): clients
        # tell "no such thing" from "not for you" by the code alone.
        error = "not_found" if self.status == 404 else "refused"
        body: dict[str, object] = {"error": error, "message": self.message}
        if self.field:
            body["errors"] = {self.field: [self.message]}
        return body
