"""`make reliability`: real gunicorn servers under load, crashes, a database outage and replays."""
