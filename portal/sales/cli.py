import csv
import sys

import click
from flask.cli import AppGroup

from portal.sales import service

sales_cli = AppGroup("sales", help="Leads from the contact-sales form.")
COLUMNS = ("id", "created_at", "name", "email", "clinic", "clinicians", "country", "message")


@sales_cli.command("leads")
@click.option("--csv", "as_csv", is_flag=True, help="Write CSV to standard output.")
def leads_command(as_csv: bool) -> None:
    """List the contact-sales leads, oldest first."""
    leads = service.all_leads()
    if as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(COLUMNS)
        for lead in leads:
            writer.writerow([getattr(lead, column) for column in COLUMNS])
        return
    for lead in leads:
        click.echo(
            f"{lead.id:>4}  {lead.created_at:%Y-%m-%d}  {lead.clinic} ({lead.clinicians} "
            f"clinicians, {lead.country})  {lead.name} <{lead.email}>"
        )
    click.echo(f"{len(leads)} lead(s)")
