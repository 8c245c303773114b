"""Keys read from a request: a form's submission key, a record's id.

Its own small module so the middleware, the forms and the views can all read
them without importing one another.
"""

from __future__ import annotations

import uuid
from typing import Any

#: The query parameter (and form field) that carries a form's submission key.
FORM_KEY_PARAM = "key"


def uuid_or_none(value: Any) -> uuid.UUID | None:
    """`value` as a UUID, or None when it is not one (a key from the address)."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None
