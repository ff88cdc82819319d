"""Plain text to Atlassian Document Format, for bodies Jira REST v3 accepts."""
from __future__ import annotations

import re
from typing import Any

# Wiki-markup code fences in old Jira text; they become ADF code blocks so code stays verbatim.
_FENCE = re.compile(r"\{(code|noformat)(?::[^}]*)?\}(.*?)\{\1\}", re.DOTALL)


def text_to_adf(text: str | None) -> dict[str, Any] | None:
    """An ADF document: blank-line separated paragraphs, line breaks kept, code fences as code blocks."""
    if text is None or not text.strip():
        return None
    content: list[dict[str, Any]] = []
    position = 0
    for match in _FENCE.finditer(text):
        content.extend(_paragraphs(text[position:match.start()]))
        code = match.group(2).strip("\n")
        if code:
            content.append({"type": "codeBlock", "attrs": {},
                            "content": [{"type": "text", "text": code}]})
        position = match.end()
    content.extend(_paragraphs(text[position:]))
    return {"type": "doc", "version": 1, "content": content or _paragraphs(text)}


def _paragraphs(text: str) -> list[dict[str, Any]]:
    """Paragraph nodes for each blank-line separated block; empty text nodes are invalid ADF."""
    nodes = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        lines = [line for line in block.split("\n")]
        inline: list[dict[str, Any]] = []
        for index, line in enumerate(lines):
            if index and inline:
                inline.append({"type": "hardBreak"})
            if line:
                inline.append({"type": "text", "text": line})
        while inline and inline[-1]["type"] == "hardBreak":
            inline.pop()
        if inline:
            nodes.append({"type": "paragraph", "content": inline})
    return nodes
