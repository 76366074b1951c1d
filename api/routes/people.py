"""Personal accounts (admins create them) and the people side of an alert: assignee and comments."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response

from api.deps import Caller, Conn, Now
from api.schemas import Problem
from api.schemas_people import AlertPeople, Assign, CommentCreate, User, UserCreate
from forewarn.errors import NotFound
from forewarn.storage import people

router = APIRouter(tags=["people"])
UserId = Annotated[int, Path(ge=1, le=2**62)]
AlertId = Annotated[int, Path(ge=1, le=2**62)]


@router.get("/v1/users", response_model=list[User])
def list_users(conn: Conn) -> list[User]:
    """Every account (password hashes are never shown)."""
    return [User(**u) for u in people.list_users(conn)]


@router.post("/v1/users", response_model=User, status_code=201, responses={409: {"model": Problem}})
def create_user(conn: Conn, caller: Caller, body: UserCreate) -> User:
    """Create a personal account for the dashboard; the password is stored as an argon2id hash."""
    try:
        row = people.create_user(
            conn,
            name=body.name,
            email=body.email,
            role=body.role,
            password=body.password,
            actor=caller.name,
        )
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return User(**row)


@router.delete("/v1/users/{user_id}", status_code=204, responses={404: {"model": Problem}})
def deactivate_user(conn: Conn, user_id: UserId) -> Response:
    """Deactivate an account: it can no longer log in (its history keeps its name)."""
    if not people.set_user_active(conn, user_id, False):
        raise NotFound(f"no user {user_id}")
    return Response(status_code=204)


@router.get(
    "/v1/alerts/{alert_id}/people", response_model=AlertPeople, responses={404: {"model": Problem}}
)
def alert_people(conn: Conn, alert_id: AlertId) -> AlertPeople:
    """The alert's assignee and its comments, oldest first."""
    return AlertPeople(**people.alert_people(conn, alert_id))


@router.post(
    "/v1/alerts/{alert_id}/assign", response_model=AlertPeople, responses={404: {"model": Problem}}
)
def assign(conn: Conn, caller: Caller, now: Now, alert_id: AlertId, body: Assign) -> AlertPeople:
    """Assign the alert to a person (null unassigns); audited, and the person is notified."""
    return AlertPeople(
        **people.assign_alert(conn, alert_id, body.user_id, actor=caller.name, now=now)
    )


@router.post(
    "/v1/alerts/{alert_id}/comments",
    response_model=AlertPeople,
    status_code=201,
    responses={404: {"model": Problem}},
)
def comment(
    conn: Conn, caller: Caller, now: Now, alert_id: AlertId, body: CommentCreate
) -> AlertPeople:
    """Comment on the alert; audited, and the assignee is notified."""
    try:
        out = people.comment_alert(conn, alert_id, body.body, actor=caller.name, now=now)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return AlertPeople(**out)
