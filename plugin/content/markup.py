"""Markup converters: ADF JSON, Jira wiki markup and Confluence storage XHTML to plain text.

Every converter only extracts text; nothing is ever rendered, so scripts, event handlers and
`javascript:` URLs cannot survive. Inputs are bounded and walked iteratively, so hostile
nesting cannot exhaust the recursion limit.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

MAX_TEXT = 100_000  # characters kept for any one text field
MAX_INPUT = 2_000_000  # characters of markup read at most; the rest cannot reach MAX_TEXT anyway
MAX_NODES = 200_000  # ADF nodes visited at most

_ADF_BLOCKS = {"paragraph", "heading", "blockquote", "codeBlock", "listItem", "tableRow",
               "panel", "rule", "mediaSingle", "expand", "nestedExpand", "decisionItem", "taskItem"}
_ADF_CELLS = {"tableCell", "tableHeader"}


# Runs of blank space other than a lone " " (what a run becomes anyway). Texts are clipped when
# normalised and again when stored: the second time there is nothing to collapse, and substring
# tests (memchr-fast) find that out several times faster than the regex scanning for it.
_BLANKS = re.compile(r" [ \t\r\f\v\u00a0]+|[\t\r\f\v\u00a0][ \t\r\f\v\u00a0]*")
_ODD_BLANKS = ("  ", "\t", "\r", "\f", "\v", "\u00a0")
_GAPS = re.compile(r"\n\s*\n+")


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """Collapse runs of blank space and cap the length."""
    text = text[: limit * 2]
    if any(blank in text for blank in _ODD_BLANKS):
        text = _BLANKS.sub(" ", text)
    text = _GAPS.sub("\n\n", text)
    return text.strip()[:limit]


def _adf_leaf(node: dict[str, Any]) -> str:
    kind = node.get("type")
    attrs = value if isinstance(value := node.get("attrs"), dict) else {}
    if kind == "text":
        return str(node.get("text") or "")
    if kind == "mention":
        return str(attrs.get("text") or "@" + str(attrs.get("id") or ""))
    if kind == "emoji":
        return str(attrs.get("text") or attrs.get("shortName") or "")
    if kind == "hardBreak":
        return "\n"
    if kind in ("inlineCard", "blockCard", "embedCard"):
        return " " + str(attrs.get("url") or "") + " "
    if kind in ("status", "date"):
        return str(attrs.get("text") or attrs.get("timestamp") or "")
    return ""


def adf_to_text(doc: Any) -> str:
    """Plain text of an Atlassian Document Format tree, walked with an explicit stack."""
    out: list[str] = []
    stack: list[Any] = [doc]
    visited = 0
    while stack and visited < MAX_NODES:
        node = stack.pop()
        visited += 1
        if isinstance(node, str):  # a separator pushed after a block's children
            out.append(node)
            continue
        if not isinstance(node, dict):
            continue
        out.append(_adf_leaf(node))
        kind = node.get("type")
        if not isinstance(kind, str):  # a signed body in any shape: a list type is no block (unhashable)
            kind = None
        if kind in _ADF_BLOCKS:
            stack.append("\n")
        elif kind in _ADF_CELLS:
            stack.append(" | ")
        content = node.get("content")
        if isinstance(content, list):
            stack.extend(reversed(content))
    return clip("".join(out))


# (trigger, pattern, replacement): a rule runs only when its trigger character occurs at all.
_WIKI_RULES: list[tuple[str, re.Pattern[str], str]] = [
    ("{", re.compile(r"\{\{(.*?)\}\}"), r"\1"),
    ("{", re.compile(r"\{(?:code|noformat|quote|panel)(?::[^}]*)?\}"), "\n"),
    ("{", re.compile(r"\{color(?::[^}]*)?\}"), ""),
    ("[", re.compile(r"\[~(?:accountid:)?([^\]]+)\]"), r"@\1"),
    ("[", re.compile(r"\[([^|\]\n]*)\|([^\]\n]*)\]"), r"\1 \2"),
    ("[", re.compile(r"\[((?:https?|ftp|mailto):[^\]\s]*)\]"), r"\1"),
    ("h", re.compile(r"(?m)^h[1-6]\.[ \t]*"), ""),
    ("", re.compile(r"(?m)^[ \t]*(?:[*#-]+|\|\|?)[ \t]"), ""),
    ("!", re.compile(r"!([^!\s|]+)(?:\|[^!\n]*)?!"), r" \1 "),
    ("*", re.compile(r"(?<![\w*])\*(\S(?:[^*\n]*\S)?)\*(?![\w*])"), r"\1"),
    ("_", re.compile(r"(?<![\w_])_(\S(?:[^_\n]*\S)?)_(?![\w_])"), r"\1"),
    ("|", re.compile(r"\|\|?"), " "),
]


def wiki_to_text(markup: str | None) -> str:
    """Plain text of Jira wiki markup (REST v2 bodies)."""
    text = (markup or "")[:MAX_INPUT]
    for trigger, pattern, replacement in _WIKI_RULES:
        if trigger in text:
            text = pattern.sub(replacement, text)
    return clip(text)


_BLOCK_TAGS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre",
               "blockquote", "table", "ul", "ol", "hr", "section", "article", "ac:task"}
_SKIP_TAGS = {"script", "style", "template", "iframe", "object", "embed", "svg", "math", "noscript",
              "head", "title", "textarea", "select"}


class _TextExtractor(HTMLParser):
    """Collects character data only; attributes (event handlers, URLs) are never read."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0
        self.size = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self.skip_depth += 1
        elif tag in _BLOCK_TAGS or tag in ("td", "th"):
            self.parts.append("\n" if tag in _BLOCK_TAGS else " ")
        elif tag == "ri:user":
            account = dict(attrs).get("ri:account-id")
            if account and not self.skip_depth:
                self.parts.append(f" @{account} ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag in _BLOCK_TAGS or tag in ("td", "th"):
            self.parts.append("\n" if tag in _BLOCK_TAGS else " ")

    def handle_data(self, data: str) -> None:
        if not self.skip_depth and self.size < MAX_TEXT * 2:
            self.parts.append(data)
            self.size += len(data)


def storage_to_text(xhtml: str | None) -> str:
    """Plain text of Confluence storage-format XHTML (or any hostile HTML)."""
    parser = _TextExtractor()
    parser.feed((xhtml or "")[:MAX_INPUT])
    parser.close()
    return clip("".join(parser.parts))


def body_to_text(body: Any) -> str:
    """Plain text of a Jira body in either REST dialect: ADF (v3, webhooks) or wiki markup (v2)."""
    if isinstance(body, dict):
        return adf_to_text(body)
    if isinstance(body, str):
        return wiki_to_text(body)
    return ""
