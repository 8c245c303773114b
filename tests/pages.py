"""Reading rendered pages the way a browser would: form values and errors."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser


class _FormValues(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.values: dict[str, str] = {}
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        name = attributes.get("name")
        if tag == "input" and name:
            self.values[name] = attributes.get("value") or ""
        elif tag == "select" and name:
            self._select = name
            self.values.setdefault(name, "")
        elif tag == "option" and self._select and "selected" in attributes:
            self.values[self._select] = attributes.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


def form_values(page: str) -> dict[str, str]:
    """What a browser would submit: input values and selected options, by name."""
    parser = _FormValues()
    parser.feed(page)
    return parser.values


def field_errors(page: str, name: str) -> list[str]:
    """The error texts rendered in the error area of the field `name`."""
    match = re.search(
        rf'<div class="field-errors" id="id_{name}-errors"[^>]*>(.*?)</div>',
        page,
        re.DOTALL,
    )
    assert match, f"no error area for {name}"
    return [
        html.unescape(text)
        for text in re.findall(r'<p class="error">(.*?)</p>', match.group(1))
    ]


def non_field_errors(page: str) -> list[str]:
    match = re.search(
        r'<div class="form-errors" id="form-errors">(.*?)</div>', page, re.DOTALL
    )
    if not match:
        return []
    return [
        html.unescape(text)
        for text in re.findall(r'<p class="error">(.*?)</p>', match.group(1))
    ]
