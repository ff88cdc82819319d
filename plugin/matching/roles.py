"""Roles people have on items, and how strongly each ties a person to the item's topic."""
from __future__ import annotations

ROLES = ("assignee", "resolver", "answerer", "creator", "editor", "kudos", "commenter", "reporter")
ROLE_WEIGHTS = {"assignee": 1.0, "resolver": 1.0, "answerer": 0.9, "creator": 0.6, "editor": 0.5,
                "kudos": 0.6, "commenter": 0.45, "reporter": 0.3}
# Roles that mean someone did the work, rather than talked about it or asked for it. Each weighs
# more than any other role, so a person's strongest role on an item is owning whenever they have one.
OWNING = frozenset({"assignee", "resolver", "answerer", "creator", "editor", "kudos"})


def role_weight(role: str) -> float:
    """Association strength of a role (unknown roles count like a report)."""
    return ROLE_WEIGHTS.get(role, ROLE_WEIGHTS["reporter"])


# Among roles of equal weight, the one that says most about the work comes first: a resolved
# issue's assignee is also its resolver, and "resolved AMQ-1" says more than "was assigned AMQ-1".
_TIES = ("resolver", "assignee", "answerer", "creator", "kudos", "editor", "commenter", "reporter")


def strength(role: str) -> tuple[float, int]:
    """How strongly a role ties a person to an item; equals told apart by what they say."""
    return role_weight(role), -_TIES.index(role) if role in _TIES else -len(_TIES)


def strongest(roles: list[str]) -> str:
    """The role that ties a person most to an item, whatever order the roles come in."""
    return max(roles, key=strength)

# What each role says someone did, as a reason reads it: "resolved AMQ-1 and AMQ-2".
DONE = {"resolver": "resolved", "assignee": "was assigned", "answerer": "answered questions on",
        "creator": "wrote", "editor": "edited", "kudos": "was thanked for", "commenter": "commented on",
        "reporter": "reported"}


def done(role: str) -> str:
    """What a role says someone did to an item."""
    return DONE.get(role, "worked on")
