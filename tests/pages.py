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


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "template"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "template") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def page_text(page: str) -> str:
    """The text a reader sees, whitespace collapsed to single spaces."""
    parser = _Text()
    parser.feed(page)
    return " ".join(" ".join(parser.parts).split())


class _Radios(HTMLParser):
    def __init__(self, name: str) -> None:
        super().__init__(convert_charrefs=True)
        self.name = name
        self.choices: list[tuple[str, str, bool]] = []
        self._label: list[str] | None = None
        self._radio: tuple[str, bool] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "label":
            self._label = []
        elif (
            tag == "input"
            and attributes.get("type") == "radio"
            and attributes.get("name") == self.name
        ):
            self._radio = (attributes.get("value") or "", "checked" in attributes)

    def handle_endtag(self, tag: str) -> None:
        if tag == "label" and self._label is not None:
            if self._radio is not None:
                value, checked = self._radio
                self.choices.append(
                    (value, " ".join("".join(self._label).split()), checked)
                )
            self._label = self._radio = None

    def handle_data(self, data: str) -> None:
        if self._label is not None:
            self._label.append(data)


def radio_choices(page: str, name: str) -> list[tuple[str, str, bool]]:
    """The radio buttons named `name`, each as (value, label text, checked);
    the buttons must sit inside their labels."""
    parser = _Radios(name)
    parser.feed(page)
    return parser.choices
