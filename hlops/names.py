"""The patterns a resource's names and users' e-mails must match: one definition for the
manifest language (:mod:`hlops.models`) and the reference server's request schemas
(:mod:`hlops.server.schemas`), so a name ``hlops validate`` accepts is one the server takes.

Resource names: printable, no leading/trailing space, no newline, no slash, no NUL (no store
keeps one: PostgreSQL's text cannot hold it). Dots are allowed in dataset names (a reference
splits at the *last* dot), never in field names.
"""

NAME_PATTERN = r"^[^\s/\x00](?:[^\n\r\t/\x00]*[^\s/\x00])?$"
FIELD_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]*$"
EMAIL_PATTERN = r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$"
