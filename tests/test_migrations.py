from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade

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
