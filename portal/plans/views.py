"""Which option fits my team: the four paths, prices, the clinic discount and a calculator."""

from flask import Blueprint, render_template, request

from portal.billing.service import PLAN_NAMES, period_total, tier_prices
from portal.htmx import is_htmx

bp = Blueprint("plans", __name__)
MAX_SEATS = 10000


def _count(name: str, default: int) -> int:
    value = request.args.get(name, type=int)
    return default if value is None else max(0, min(value, MAX_SEATS))


def estimate(clinicians: int, assistants: int) -> dict:
    """What a team of this size pays per month and per year, from the one price table."""
    return {
        "clinicians": clinicians,
        "assistants": assistants,
        "rows": [
            {
                "plan": PLAN_NAMES[plan],
                "month": period_total(plan, "month", clinicians),
                "year": period_total(plan, "year", clinicians),
                # Pro has no assistants: each would need a paid seat of their own.
                "extra": 0 if plan == "practice" else assistants,
                "month_with_assistants": period_total(plan, "month", clinicians + assistants),
                "year_with_assistants": period_total(plan, "year", clinicians + assistants),
            }
            for plan in ("pro", "practice")
        ],
    }


@bp.get("/plans")
def show():
    result = estimate(_count("clinicians", 5), _count("assistants", 1))
    if is_htmx():
        return render_template("plans/_estimate.html", estimate=result)
    return render_template(
        "plans/show.html",
        estimate=result,
        tiers={
            (plan, interval): tier_prices(plan, interval)
            for plan in ("pro", "practice")
            for interval in ("month", "year")
        },
    )
