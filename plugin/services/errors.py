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
        body: dict[str, object] = {"error": "refused", "message": self.message}
        if self.field:
            body["errors"] = {self.field: [self.message]}
        return body
