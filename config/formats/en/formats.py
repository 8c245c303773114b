"""Dates and times in the admin (and any unformatted value) as the app shows
them: "2026-11-30 10:02:07 CET", the clinic's zone abbreviation at that
instant (`T`). The admin is the full record, so it keeps seconds throughout.

Only what differs from Django's English formats is here; the rest (input
formats included) falls back to them.
"""

DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s T"
TIME_FORMAT = "H:i"
