from flask import Blueprint, current_app, render_template
from flask_login import current_user

from portal.clock import utcnow
from portal.extensions import db, limiter
from portal.sales import service
from portal.sales.forms import ContactForm

bp = Blueprint("sales", __name__)


@bp.route("/contact-sales", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_CONTACT"], methods=["POST"])
def contact():
    form = ContactForm()
    if not form.is_submitted() and current_user.is_authenticated:
        form.name.data, form.email.data = current_user.name, current_user.email
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return render_template("sales/contact.html", form=form), status
    lead = service.record_lead(form.data, now=utcnow())
    db.session.commit()
    return render_template("sales/thanks.html", lead=lead)
