"""The one error a report raises: a request it cannot answer (a bad parameter, a missing rate).

Reports are pure builders over the store; they know nothing of HTTP. The API maps a
ReportError to 400 with its message in one place (api/routes.py), and the dashboard shows
it on its error page.
"""


class ReportError(ValueError):
    """A report cannot be built for these parameters; the message names the parameter."""
