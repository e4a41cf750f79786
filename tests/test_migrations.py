from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from portal import create_app
from portal.extensions import db
from tests.conftest import is_postgres


def test_migrations_build_the_schema_the_models_describe(database_url, tmp_path):
    # On PostgreSQL the session database was built from empty by `upgrade`; on SQLite build a
    # fresh one here.
    url = database_url if is_postgres(database_url) else f"sqlite:///{tmp_path}/fresh.sqlite3"
    app = create_app({"PORTAL_DEV": True, "SECRET_KEY": "t", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "render_as_batch": True}
            )
            differences = compare_metadata(context, db.metadata)
        db.engine.dispose()
    assert differences == []


def test_migrations_go_down_past_the_audit_index_and_up_again(database_url, tmp_path):
    url = database_url if is_postgres(database_url) else f"sqlite:///{tmp_path}/fresh.sqlite3"
    app = create_app({"PORTAL_DEV": True, "SECRET_KEY": "t", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        downgrade(revision="0006")
        indexes = {i["name"] for i in inspect(db.engine).get_indexes("audit_events")}
        assert "ix_audit_events_team_id" in indexes
        assert "ix_audit_events_team_id_id" not in indexes
        upgrade()
        indexes = {i["name"] for i in inspect(db.engine).get_indexes("audit_events")}
        db.engine.dispose()
    assert "ix_audit_events_team_id_id" in indexes
    assert "ix_audit_events_team_id" not in indexes


def test_the_audit_index_is_built_concurrently_outside_a_transaction_on_postgresql(capsys):
    # Offline mode writes the SQL for PostgreSQL without a server.
    url = "postgresql://nobody@127.0.0.1:1/none"
    app = create_app({"PORTAL_DEV": True, "SECRET_KEY": "t", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        capsys.readouterr()
        upgrade(revision="0006:0007", sql=True)
    sql = capsys.readouterr().out
    create = sql.index("CREATE INDEX CONCURRENTLY ix_audit_events_team_id_id")
    assert sql.rindex("COMMIT;", 0, create) > sql.rindex("BEGIN;", 0, create)
    assert "DROP INDEX CONCURRENTLY ix_audit_events_team_id;" in sql
