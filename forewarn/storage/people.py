"""Personal accounts (argon2id-hashed passwords) and the people side of alerts: assignment, comments.

Assigning and commenting write the alert's audited history (``alert_transitions``, status unchanged,
reason ``assigned`` / ``commented``), take a change sequence number so pollers see them, and queue
notifications in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from psycopg import Connection, errors
from psycopg.rows import dict_row

from forewarn.errors import Conflict, NotFound
from forewarn.storage.keys import ROLES

_hasher = PasswordHasher()  # argon2id with the library's current parameters
MIN_PASSWORD_LEN = 10
USER_COLUMNS = "id, name, email, role, active, created_by, created_at, last_login_at"


@dataclass(frozen=True, slots=True)
class Person:
    id: int
    name: str
    email: str
    role: str


def hash_password(password: str) -> str:
    """argon2id hash of a password (salted; the parameters are stored in the hash)."""
    return _hasher.hash(password)


def create_user(
    conn: Connection, *, name: str, email: str, role: str, password: str, actor: str
) -> dict[str, Any]:
    """Create an account; Conflict when the e-mail exists, ValueError for a bad role or password."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD_LEN:
        raise ValueError(f"the password needs at least {MIN_PASSWORD_LEN} characters")
    if "@" not in email or not name.strip():
        raise ValueError("a user needs a name and an e-mail address")
    try:
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                "insert into users (name, email, role, password_hash, created_by)"
                f" values (%s, %s, %s, %s, %s) returning {USER_COLUMNS}",
                (name.strip(), email.strip(), role, hash_password(password), actor),
            )
            row = cur.fetchone()
    except errors.UniqueViolation:
        raise Conflict(f"a user with e-mail {email!r} exists") from None
    assert row is not None
    return row


def list_users(conn: Connection) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"select {USER_COLUMNS} from users order by name, id")
        return cur.fetchall()


def get_user(conn: Connection, user_id: int) -> Person | None:
    row = conn.execute(
        "select id, name, email, role from users where id = %s and active", (user_id,)
    ).fetchone()
    return None if row is None else Person(int(row[0]), row[1], row[2], row[3])


def get_user_by_email(conn: Connection, email: str) -> Person | None:
    row = conn.execute(
        "select id, name, email, role from users where lower(email) = lower(%s) and active",
        (email.strip(),),
    ).fetchone()
    return None if row is None else Person(int(row[0]), row[1], row[2], row[3])


def set_user_active(conn: Connection, user_id: int, active: bool) -> bool:
    cur = conn.execute("update users set active = %s where id = %s", (active, user_id))
    return cur.rowcount == 1


def set_password(conn: Connection, user_id: int, password: str) -> bool:
    if len(password) < MIN_PASSWORD_LEN:
        raise ValueError(f"the password needs at least {MIN_PASSWORD_LEN} characters")
    cur = conn.execute(
        "update users set password_hash = %s where id = %s", (hash_password(password), user_id)
    )
    return cur.rowcount == 1


def authenticate(conn: Connection, email: str, password: str, *, now: datetime) -> Person | None:
    """The active user with this e-mail and password, or None (same answer for either mistake)."""
    row = conn.execute(
        "select id, name, email, role, password_hash from users"
        " where lower(email) = lower(%s) and active",
        (email.strip(),),
    ).fetchone()
    if row is None:
        # hash anyway, so an unknown e-mail costs the same time as a wrong password
        _hasher.hash(password)
        return None
    try:
        _hasher.verify(row[4], password)
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(row[4]):
        conn.execute(
            "update users set password_hash = %s where id = %s", (hash_password(password), row[0])
        )
    record_login(conn, int(row[0]), now=now)
    return Person(int(row[0]), row[1], row[2], row[3])


def record_login(conn: Connection, user_id: int, *, now: datetime) -> None:
    """Note that the person logged in (a password or an identity provider vouched for them)."""
    conn.execute("update users set last_login_at = %s where id = %s", (now, user_id))


def alert_people(conn: Connection, alert_id: int) -> dict[str, Any]:
    """The assignee (or None) and the comments of an alert, oldest first."""
    row = conn.execute(
        "select a.assignee_id, u.name, u.email from alerts a left join users u on u.id = a.assignee_id"
        " where a.id = %s",
        (alert_id,),
    ).fetchone()
    if row is None:
        raise NotFound(f"alert {alert_id} does not exist")
    assignee = None if row[0] is None else {"id": row[0], "name": row[1], "email": row[2]}
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "select id, author, body, at from alert_comments where alert_id = %s order by id",
            (alert_id,),
        )
        comments = cur.fetchall()
    return {"alert_id": alert_id, "assignee": assignee, "comments": comments}


def _touch(conn: Connection, alert_id: int, sets: str, args: tuple[Any, ...], now: datetime) -> Any:
    """Take the change counter, lock and update the alert; returns (before, after) rows."""
    from forewarn.storage.alerts import ALERT_COLUMNS, next_change_seq

    seq = next_change_seq(conn)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"select {ALERT_COLUMNS}, assignee_id from alerts where id = %s for update", (alert_id,)
        )
        before = cur.fetchone()
        if before is None:
            raise NotFound(f"alert {alert_id} does not exist")
        cur.execute(
            f"update alerts set {sets}, updated_at = %s, version = version + 1, change_seq = %s"
            f" where id = %s returning {ALERT_COLUMNS}",
            (*args, now, seq, alert_id),
        )
        after = cur.fetchone()
    return before, after


def assign_alert(
    conn: Connection, alert_id: int, user_id: int | None, *, actor: str, now: datetime
) -> dict[str, Any]:
    """Assign an alert to a person (None unassigns); audited and notified. Idempotent."""
    from forewarn.storage.alerts import log_change
    from forewarn.storage.notifications import enqueue_personal

    person = None
    if user_id is not None:
        person = get_user(conn, user_id)
        if person is None:
            raise NotFound(f"user {user_id} does not exist or is inactive")
    current = conn.execute("select assignee_id from alerts where id = %s", (alert_id,)).fetchone()
    if current is None:
        raise NotFound(f"alert {alert_id} does not exist")
    if current[0] == user_id:
        return alert_people(conn, alert_id)
    before, after = _touch(conn, alert_id, "assignee_id = %s", (user_id,), now)
    detail = {
        "assignee_id": user_id,
        "assignee": person.name if person else None,
        "previous_assignee_id": before["assignee_id"],
    }
    reason = f"assigned to {person.name}" if person else "unassigned"
    log_change(conn, after, before["status"], actor, reason, detail, now, "alert.assigned")
    if person is not None:
        enqueue_personal(
            conn, after, user_id=person.id, kind="assignment", text=f"{actor} {reason}", now=now
        )
    return alert_people(conn, alert_id)


def comment_alert(
    conn: Connection, alert_id: int, body: str, *, actor: str, now: datetime
) -> dict[str, Any]:
    """Add a comment to an alert; audited, and the assignee (when not the author) is notified."""
    from forewarn.storage.alerts import log_change
    from forewarn.storage.notifications import enqueue_personal

    text = body.strip()
    if not text:
        raise ValueError("a comment needs text")
    if len(text) > 4000:
        raise ValueError("a comment has at most 4000 characters")
    before, after = _touch(conn, alert_id, "assignee_id = assignee_id", (), now)
    row = conn.execute(
        "insert into alert_comments (alert_id, author, body, at) values (%s, %s, %s, %s)"
        " returning id",
        (alert_id, actor, text, now),
    ).fetchone()
    assert row is not None
    detail = {"comment_id": int(row[0]), "body": text}
    log_change(conn, after, before["status"], actor, "commented", detail, now, "alert.commented")
    assignee = before["assignee_id"]
    if assignee is not None:
        person = get_user(conn, int(assignee))
        if person is not None and person.name != actor:
            enqueue_personal(
                conn, after, user_id=person.id, kind="comment", text=f"{actor}: {text}", now=now
            )
    return alert_people(conn, alert_id)
