"""Joint-operation login (联营kit账号登录): OAuth 2.0 against the tenant's identity domain."""
