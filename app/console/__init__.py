"""The operator console: customers, licences, tenants, calls and jobs in a browser (/console)."""
