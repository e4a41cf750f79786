"""The yardstick: the same stack rendering the same N member rows from one joined query.

Flask + Flask-SQLAlchemy + Jinja; no auth, no i18n, no CSRF, no permissions.
"""

import os

from flask import Flask, render_template_string
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import text

app = Flask(__name__)
url = os.environ["BENCH_DATABASE_URL"]
if url.startswith("postgresql://"):
    url = "postgresql+psycopg://" + url.split("://", 1)[1]
app.config["SQLALCHEMY_DATABASE_URI"] = url
db = SQLAlchemy(app)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ team }}</title></head>
<body><h1>{{ team }}</h1>
<table><thead><tr><th>Name</th><th>Email</th><th>Role</th><th>Joined</th></tr></thead><tbody>
{% for name, email, role, joined in rows %}
<tr><td>{{ name }}</td><td>{{ email }}</td><td>{{ role }}</td><td>{{ joined.date() }}</td></tr>
{% endfor %}
</tbody></table></body></html>"""


@app.get("/team/<int:team_id>")
def team(team_id):
    rows = db.session.execute(
        text(
            "SELECT u.name, u.email, m.role, m.created_at, t.name AS team FROM memberships m "
            "JOIN users u ON u.id = m.user_id JOIN teams t ON t.id = m.team_id "
            "WHERE m.team_id = :team ORDER BY u.name"
        ),
        {"team": team_id},
    ).all()
    return render_template_string(
        PAGE, team=rows[0].team if rows else "", rows=[r[:4] for r in rows]
    )
