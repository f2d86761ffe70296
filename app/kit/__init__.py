"""Joint-operation (联营) kit sync: tenants, app credentials, users and departments."""
