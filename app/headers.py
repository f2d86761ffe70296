"""Security headers on every answer."""

from flask import Flask, Response

# Pages use inline <style> blocks and no scripts; forms post to this site (the OAuth logout then
# redirects to the identity domain, which form-action must allow).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self' https:; frame-ancestors 'none'; base-uri 'none'"
)


def add_security_headers(app: Flask) -> None:
    """Install the after-request hook that sets the headers."""
    production = app.config["KOOGALLERY_ENV"] == "production"

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        if production:
            # The marketplace requires HTTPS; tell browsers to keep to it.
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response
