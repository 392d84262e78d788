"""Who decided: the claimed reviewer is recorded beside the identities that were authenticated (the OS account
of `aoi approve`, the Prefect login), and a person cannot pass as the timeout watchdog."""

from __future__ import annotations

import os
import pwd

from promotion import approval, stages
from promotion.stages import TIMEOUT_REVIEWER


def test_aoi_approve_names_the_os_account_it_runs_as():
    user = pwd.getpwuid(os.geteuid()).pw_name
    assert stages.os_user() == user
    assert stages.claimed_by(None) == f"os:{user}"
    assert stages.claimed_by(user) == f"os:{user}"
    assert stages.claimed_by("mallory") == f"mallory (os:{user})"


def test_aoi_rollback_records_the_os_account_beside_the_name(aoi_home):
    import json

    from typer.testing import CliRunner

    from cli import app

    user = pwd.getpwuid(os.geteuid()).pw_name
    result = CliRunner().invoke(app, ["rollback", "gray", "--by", " ", "--reason", "x", "--json"])
    assert result.exit_code == 2 and "--by is empty" in json.loads(result.stdout)["error"]
    from promotion.stages import claimed_by

    assert claimed_by("carol") == f"carol (os:{user})" and claimed_by(None) == f"os:{user}"


def test_the_recorded_reviewer_carries_the_prefect_login_and_fits_the_catalog():
    from prefect.settings import PREFECT_API_AUTH_STRING, temporary_settings

    with temporary_settings(updates={PREFECT_API_AUTH_STRING: "reviewers:s3cret"}):
        principal = approval.prefect_principal()
    assert principal == "prefect:reviewers"  # the user part only: the password is never recorded
    with temporary_settings(updates={PREFECT_API_AUTH_STRING: None}):
        assert approval.prefect_principal() == "prefect:unauthenticated"
    form = approval.ApprovalForm(approve=True, reviewer="alice", comment="")
    assert approval.recorded_form(form, False, principal).reviewer == "alice [prefect:reviewers]"
    long = approval.ApprovalForm(approve=True, reviewer="a" * 128)
    recorded = approval.recorded_form(long, False, principal).reviewer
    assert len(recorded) == approval.REVIEWER_MAX and recorded.endswith(" [prefect:reviewers]")


def test_only_the_watchdog_records_a_timeout():
    forged = approval.ApprovalForm(approve=False, reviewer=TIMEOUT_REVIEWER)
    assert approval.recorded_form(forged, True, "prefect:aoi").reviewer == TIMEOUT_REVIEWER
    # A person typing the watchdog's name is a person's rejection, attributed like any other.
    assert approval.recorded_form(forged, False, "prefect:aoi").reviewer == f"{TIMEOUT_REVIEWER} [prefect:aoi]"
