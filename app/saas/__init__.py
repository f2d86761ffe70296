"""SaaS basic interfaces (基础接口): V1 over GET, V2 over POST, on the production path /saas."""
