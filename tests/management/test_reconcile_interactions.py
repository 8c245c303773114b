"""`manage.py reconcile_interactions`, against the real simulator."""

from __future__ import annotations

import datetime as dt
import io
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from intake.models import CortiCall, Interaction
from tests.support.corti import (
    corti_create,
    corti_holds,
    create_attempts,
    fault,
    list_requests,
    set_faults,
)
from tests.support.records import Outcome, calls_of, stranded, submit

# Corti's searches answer 503 in most cases: each waits out the retries' backoff
# (~0.5 s), ~6 s in all.
pytestmark = [pytest.mark.django_db, pytest.mark.slow]

COMMAND = CortiCall.Trigger.COMMAND
R = CortiCall.Result


def reconcile(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("reconcile_interactions", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def summary(checked: int, created: int, failed: int, unknown: int, skipped=0) -> str:
    return (
        f"Checked {checked}: {created} created in Corti, "
        f"{failed} not in Corti (can be retried), "
        f"{unknown} still unknown, "
        f"{skipped} taken by another process.\n"
    )


def backdate(record: Interaction, minutes: int) -> None:
    """As if the record had been sent `minutes` ago (beyond the settle window)."""
    then = timezone.now() - dt.timedelta(minutes=minutes)
    fields = {"created_at": then, "last_attempt_at": then}
    if record.answer_lost_at is not None:
        fields["answer_lost_at"] = then
    Interaction.objects.filter(pk=record.pk).update(**fields)
    record.refresh_from_db()


@pytest.fixture
def mix(corti, clinician):
    """An unknown record, two stale pending ones and a fresh pending one.

    All but the fresh one were sent minutes ago, beyond the settle window.
    """
    set_faults(corti, fault("created-504", count=1), fault("503", "list"))
    unknown = submit(clinician, encounter_identifier="ENC-UNKNOWN").record
    unknown.refresh_from_db()
    assert unknown.outcome == Outcome.UNKNOWN
    set_faults(corti)
    backdate(unknown, 30)
    held = stranded(clinician, encounter_identifier="ENC-HELD")
    backdate(held, 20)
    landed = corti_create(corti, held.request_body)
    lost = stranded(clinician, encounter_identifier="ENC-LOST")
    backdate(lost, 10)
    fresh = stranded(
        clinician, encounter_identifier="ENC-FRESH", age=dt.timedelta(seconds=1)
    )
    return {
        "unknown": unknown,
        "held": held,
        "landed": landed,
        "lost": lost,
        "fresh": fresh,
    }


def test_command_settles_every_due_record_and_prints_a_summary(corti, mix):
    before = list_requests(corti)

    out, err = reconcile()

    assert out == summary(checked=3, created=2, failed=1, unknown=0)
    assert err == ""
    unknown, held, lost, fresh = (
        Interaction.objects.get(pk=mix[name].pk)
        for name in ("unknown", "held", "lost", "fresh")
    )
    held_by_corti = {uuid.UUID(h["id"]): h for h in corti_holds(corti)}
    assert len(held_by_corti) == 2
    assert unknown.outcome == Outcome.CREATED
    assert unknown.interaction_id in held_by_corti
    assert held_by_corti[unknown.interaction_id]["encounter"]["identifier"] == (
        "ENC-UNKNOWN"
    )
    assert held.outcome == Outcome.CREATED
    assert held.interaction_id == mix["landed"]
    assert lost.outcome == Outcome.FAILED
    assert lost.error_code == "interrupted"
    assert lost.retryable is True
    assert fresh.outcome == Outcome.PENDING
    assert fresh.last_attempt_at == mix["fresh"].last_attempt_at
    for record, result in ((unknown, R.FOUND), (held, R.FOUND), (lost, R.NOT_FOUND)):
        assert calls_of(record)[-1] == (CortiCall.Kind.LOOKUP, result, COMMAND, None)
    assert not CortiCall.objects.filter(interaction=fresh, kind="lookup").exists()
    # One lookup each for the three due records; nothing sent to be created.
    assert CortiCall.objects.filter(trigger=COMMAND).count() == 3
    # Found on the first page twice; the miss reads to the empty page after it.
    assert list_requests(corti) - before == 4
    assert create_attempts(corti.state()) == 2


def test_command_run_twice_is_harmless(corti, mix):
    reconcile()
    settled = {
        r.pk: (r.outcome, r.interaction_id, r.error_code)
        for r in Interaction.objects.all()
    }
    calls = CortiCall.objects.count()
    before = corti.state()["counts"]

    out, err = reconcile()

    assert out == summary(checked=0, created=0, failed=0, unknown=0)
    assert err == ""
    assert {
        r.pk: (r.outcome, r.interaction_id, r.error_code)
        for r in Interaction.objects.all()
    } == settled
    assert CortiCall.objects.count() == calls
    assert corti.state()["counts"] == before
    assert len(corti_holds(corti)) == 2


def test_limit_settles_the_oldest_due_record_only(corti, mix):
    out, _ = reconcile("--limit", "1")

    assert out == summary(checked=1, created=1, failed=0, unknown=0)
    outcomes = {
        name: Interaction.objects.get(pk=mix[name].pk).outcome
        for name in ("unknown", "held", "lost", "fresh")
    }
    assert outcomes == {
        "unknown": Outcome.CREATED,
        "held": Outcome.PENDING,
        "lost": Outcome.PENDING,
        "fresh": Outcome.PENDING,
    }

    out, _ = reconcile("--limit", "1")

    assert out == summary(checked=1, created=1, failed=0, unknown=0)
    assert Interaction.objects.get(pk=mix["held"].pk).outcome == Outcome.CREATED
    assert Interaction.objects.get(pk=mix["lost"].pk).outcome == Outcome.PENDING
    assert len(corti_holds(corti)) == 2


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_limit_below_one_is_an_error(corti, mix, limit):
    before = list_requests(corti)

    with pytest.raises(CommandError, match="--limit must be at least 1"):
        reconcile("--limit", limit)

    assert list_requests(corti) == before
    assert Interaction.objects.filter(outcome=Outcome.PENDING).count() == 3


def test_records_corti_cannot_be_searched_for_stay_unknown(corti, clinician):
    record = stranded(clinician)
    backdate(record, 10)
    set_faults(corti, fault("503", "list"))

    out, err = reconcile()

    assert out == summary(checked=1, created=0, failed=0, unknown=1)
    assert "Some records are still unknown" in err
    record.refresh_from_db()
    assert record.outcome == Outcome.UNKNOWN
    assert calls_of(record)[-1] == (
        CortiCall.Kind.LOOKUP,
        R.INCONCLUSIVE,
        COMMAND,
        None,
    )
    assert corti_holds(corti) == []

    set_faults(corti)
    out, err = reconcile()

    assert out == summary(checked=1, created=0, failed=1, unknown=0)
    assert err == ""
    record.refresh_from_db()
    assert record.outcome == Outcome.FAILED
    assert corti_holds(corti) == []


def test_records_lost_within_the_settle_window_stay_unknown(corti, clinician):
    set_faults(corti, fault("504", count=1))
    record = submit(clinician).record
    assert record.outcome == Outcome.UNKNOWN
    # Sent a minute ago: the lost create may still be under way in Corti.
    Interaction.objects.filter(pk=record.pk).update(
        answer_lost_at=timezone.now() - dt.timedelta(minutes=1)
    )

    out, err = reconcile()

    assert out == summary(checked=1, created=0, failed=0, unknown=1)
    assert "INTAKE_SETTLE_SECONDS" in err
    record.refresh_from_db()
    assert record.outcome == Outcome.UNKNOWN
    assert calls_of(record)[-1] == (CortiCall.Kind.LOOKUP, R.NOT_FOUND, COMMAND, None)

    # Once the window has passed, the same search proves it.
    backdate(record, 3)
    out, _ = reconcile()

    assert out == summary(checked=1, created=0, failed=1, unknown=0)
    record.refresh_from_db()
    assert record.outcome == Outcome.FAILED
    assert record.retryable is True
    assert corti_holds(corti) == []


def test_a_record_another_process_is_searching_is_skipped(corti, clinician):
    set_faults(corti, fault("504", count=1))
    record = submit(clinician).record
    Interaction.objects.filter(pk=record.pk).update(
        checking_until=timezone.now() + dt.timedelta(minutes=1)
    )
    before = list_requests(corti)

    out, _ = reconcile()

    assert out == summary(checked=1, created=0, failed=0, unknown=0, skipped=1)
    assert list_requests(corti) == before
    record.refresh_from_db()
    assert record.outcome == Outcome.UNKNOWN


def test_nothing_due_prints_an_empty_summary(corti, clinician):
    submit(clinician)

    out, err = reconcile()

    assert out == summary(checked=0, created=0, failed=0, unknown=0)
    assert err == ""
    assert list_requests(corti) == 0
