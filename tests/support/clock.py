"""Time zones the tests run the clinic in."""

from __future__ import annotations

import datetime as dt

UTC = dt.UTC
#: A clinic zone with summer time, whose name no page shows by accident
#: (unlike "UTC"). The `clinic_zone` fixture puts the clinic there.
CLINIC_ZONE = "Europe/Copenhagen"
