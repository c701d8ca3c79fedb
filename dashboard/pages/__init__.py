"""One module per page: each builds the page's context, a JSON-ready dict that the template
renders and the page's `.json` twin returns as is (money as decimal strings, exact)."""
