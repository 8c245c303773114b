"""`{% load clinic_time %}`: every time on a page in one format and zone."""

from __future__ import annotations

import datetime as dt

from django import template

from intake.clinic_time import clinic_time_text

register = template.Library()


@register.filter(name="clinic_time", expects_localtime=False)
def clinic_time(value: object, arg: str = "") -> str:
    """`{{ when|clinic_time }}` "2026-11-30 10:02 CET";
    `{{ when|clinic_time:"seconds" }}` "2026-11-30 10:02:07 CET"."""
    if not isinstance(value, dt.datetime):
        return ""
    if value.tzinfo is None:
        # Stored times are aware (USE_TZ); a naive one is taken as UTC.
        value = value.replace(tzinfo=dt.UTC)
    return clinic_time_text(value, seconds=arg == "seconds")
