"""Reading rendered pages the way a browser would, with an HTML parser.

`parse` builds a small element tree (the standard library's html.parser) that
keeps each element's place in the source: a test finds elements by tag and
attributes, then reads their text as a reader sees it, or their markup exactly
as served (to check what was escaped). Regular expressions stay for text that
is not HTML: an attribute's value, a log line, a CSV cell.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

from tests.support.factories import TYPED

#: The intake form's address, and the header htmx sends with its requests.
NEW = "/interactions/new/"
HTMX = {"HX-Request": "true"}
#: A record's detail page (the group: its id).
DETAIL_PATH = re.compile(r"/interactions/([0-9a-f-]{36})/")

#: Elements that never have content or an end tag.
VOID = frozenset(
    {
        *("area", "base", "br", "col", "embed", "hr", "img"),
        *("input", "link", "meta", "source", "track", "wbr"),
    }
)
#: Start tags that end an open element whose end tag HTML lets a page leave
#: out: the element's tag -> the start tags that end it.
ENDED_BY = {
    "li": {"li"},
    "dt": {"dt", "dd"},
    "dd": {"dt", "dd"},
    "option": {"option", "optgroup"},
    "tr": {"tr"},
    "td": {"td", "th", "tr"},
    "th": {"td", "th", "tr"},
    "p": {
        *("address", "article", "aside", "blockquote", "details", "div", "dl"),
        *("fieldset", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6"),
        *("header", "hr", "main", "nav", "ol", "p", "pre", "section", "table"),
        "ul",
    },
}
#: Elements whose content a reader never sees as text.
UNSEEN = frozenset(("script", "style", "template"))


class Element:
    """One element of a parsed page, with its place in the source."""

    def __init__(
        self,
        tag: str,
        attrs: dict[str, str | None],
        source: str,
        start: int,
        inner_start: int,
        parent: Element | None = None,
    ) -> None:
        self.tag = tag
        self.attrs = attrs
        self.source = source
        self.start = start
        self.inner_start = inner_start
        self.inner_end = inner_start
        self.end = inner_start
        self.parent = parent
        #: Child elements and text, in order.
        self.nodes: list[Element | str] = []

    def __repr__(self) -> str:
        return f"<{self.tag} {self.attrs!r}>"

    # --- what it holds -------------------------------------------------------

    @property
    def children(self) -> list[Element]:
        return [node for node in self.nodes if isinstance(node, Element)]

    def iter(self) -> Iterator[Element]:
        """Every element inside this one, in document order."""
        for child in self.children:
            yield child
            yield from child.iter()

    def _texts(self, *, seen_only: bool) -> Iterator[str]:
        for node in self.nodes:
            if isinstance(node, str):
                yield node
            elif not (seen_only and node.tag in UNSEEN):
                yield from node._texts(seen_only=seen_only)

    @property
    def text(self) -> str:
        """The text a reader sees: tags count as spaces, whitespace collapsed."""
        return " ".join(" ".join(self._texts(seen_only=True)).split())

    @property
    def raw_text(self) -> str:
        """Every character of text inside, as written (entities decoded)."""
        return "".join(self._texts(seen_only=False))

    @property
    def inner_html(self) -> str:
        """The markup inside the element, exactly as served."""
        return self.source[self.inner_start : self.inner_end]

    @property
    def outer_html(self) -> str:
        return self.source[self.start : self.end]

    @property
    def start_tag(self) -> str:
        return self.source[self.start : self.inner_start]

    def classes(self) -> list[str]:
        return (self.attrs.get("class") or "").split()

    # --- finding -------------------------------------------------------------

    def matches(
        self, tag: str | None = None, *, classes: tuple[str, ...] = (), **attrs: Any
    ) -> bool:
        """`attrs` name attributes (`class_` for class, `_` for `-`): a string
        must equal the value, True needs the attribute, False or None its
        absence; `classes` must all be among the element's classes."""
        if tag is not None and self.tag != tag:
            return False
        if not set(classes) <= set(self.classes()):
            return False
        for name, wanted in attrs.items():
            name = name.rstrip("_").replace("_", "-")
            if wanted is True:
                if name not in self.attrs:
                    return False
            elif wanted is False or wanted is None:
                if name in self.attrs:
                    return False
            elif self.attrs.get(name) != wanted:
                return False
        return True

    def find_all(
        self, tag: str | None = None, *, classes: tuple[str, ...] = (), **attrs: Any
    ) -> list[Element]:
        return [e for e in self.iter() if e.matches(tag, classes=classes, **attrs)]

    def find(
        self, tag: str | None = None, *, classes: tuple[str, ...] = (), **attrs: Any
    ) -> Element | None:
        return next(
            (e for e in self.iter() if e.matches(tag, classes=classes, **attrs)),
            None,
        )

    def one(
        self, tag: str | None = None, *, classes: tuple[str, ...] = (), **attrs: Any
    ) -> Element:
        """The only element that matches; the test fails unless there is one."""
        found = self.find_all(tag, classes=classes, **attrs)
        assert len(found) == 1, f"{len(found)} elements match {tag} {classes} {attrs}"
        return found[0]

    def find_after(
        self,
        anchor: Element,
        tag: str | None = None,
        *,
        classes: tuple[str, ...] = (),
        **attrs: Any,
    ) -> Element | None:
        """The first matching element that starts after `anchor` ends."""
        return next(
            (
                e
                for e in self.iter()
                if e.start >= anchor.end and e.matches(tag, classes=classes, **attrs)
            ),
            None,
        )


class _TreeBuilder(HTMLParser):
    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source = source
        self._line_starts = [0]
        for index, char in enumerate(source):
            if char == "\n":
                self._line_starts.append(index + 1)
        self.root = Element("#document", {}, source, 0, 0)
        self._open: list[Element] = [self.root]

    def _offset(self) -> int:
        line, column = self.getpos()
        return self._line_starts[line - 1] + column

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        start = self._offset()
        text = self.get_starttag_text() or ""
        while tag in ENDED_BY.get(self._open[-1].tag, ()):
            self._close(self._open.pop(), start)
        parent = self._open[-1]
        element = Element(
            tag, dict(attrs), self.source, start, start + len(text), parent
        )
        parent.nodes.append(element)
        if tag in VOID:
            return
        self._open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:  # <div/>: closed where it opens
            element = self._open.pop()
            self._close(element, element.inner_start)

    def handle_endtag(self, tag: str) -> None:
        if not any(element.tag == tag for element in self._open[1:]):
            return  # a stray end tag: browsers ignore it too
        at = self._offset()
        end = self.source.find(">", at) + 1 or len(self.source)
        while True:
            element = self._open.pop()
            if element.tag == tag:
                element.inner_end, element.end = at, end
                return
            self._close(element, at)  # closed by its parent's end tag

    def handle_data(self, data: str) -> None:
        self._open[-1].nodes.append(data)

    @staticmethod
    def _close(element: Element, at: int) -> None:
        element.inner_end = element.end = at

    def close(self) -> None:
        super().close()
        while len(self._open) > 1:
            self._close(self._open.pop(), len(self.source))
        self.root.inner_end = self.root.end = len(self.source)


def parse(html: str) -> Element:
    """The page as a tree of elements (its root holds the whole document)."""
    builder = _TreeBuilder(html)
    builder.feed(html)
    builder.close()
    return builder.root


# --- responses ---------------------------------------------------------------


def page(response) -> str:
    """The body of a test client's response as text (a stream read to its end)."""
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def page_ok(response) -> str:
    """The body of a 200 answer."""
    assert response.status_code == 200, response.status_code
    return page(response)


def listed(response) -> list[uuid.UUID]:
    """The records a list page shows, in order, by their detail links."""
    return [
        uuid.UUID(match.group(1))
        for link in parse(page(response)).find_all("a", href=True)
        if (match := DETAIL_PATH.fullmatch(link.attrs["href"] or ""))
    ]


def explanation(code: str) -> str:
    """The explanation of a submission that failed with `code`, as pages show
    it (escaped)."""
    from django.utils.html import escape

    from intake.models import Interaction

    failed = Interaction(outcome=Interaction.Outcome.FAILED, error_code=code)
    return escape(failed.failure_explanation)


# --- forms ---------------------------------------------------------------------


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


def post_form(client, key, values: dict[str, Any], **kwargs):
    """POST the intake form to its own address, with its submission key `key`."""
    return client.post(
        f"{NEW}?key={key}", {**values, "submission_key": str(key)}, **kwargs
    )


def post_new_form(client, values: dict[str, Any], *, key=None, **kwargs):
    """POST a freshly opened intake form (a new key unless `key` is given);
    the answer and the key."""
    key = key or uuid.uuid4()
    return post_form(client, key, values, **kwargs), key


def typed_values_in(html: str) -> dict[str, str | None]:
    """The values of the intake form's fields (factories.TYPED) on a page."""
    values = form_values(html)
    return {name: values.get(name) for name in TYPED}


def _errors_in(area: Element) -> list[str]:
    return [p.raw_text for p in area.find_all("p", class_="error")]


def field_errors(page: str, name: str) -> list[str]:
    """The error texts rendered in the error area of the field `name`."""
    area = parse(page).find("div", class_="field-errors", id=f"id_{name}-errors")
    assert area, f"no error area for {name}"
    return _errors_in(area)


def non_field_errors(page: str) -> list[str]:
    area = parse(page).find("div", class_="form-errors", id="form-errors")
    if not area:
        return []
    return _errors_in(area)


# --- text ----------------------------------------------------------------------


def page_text(page: str) -> str:
    """The text a reader sees, whitespace collapsed to single spaces."""
    return parse(page).text


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
