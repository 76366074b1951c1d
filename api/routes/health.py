"""Liveness and readiness (no key), and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.errors import unavailable
from api.schemas import Health, Problem, Ready

router = APIRouter(tags=["health"])
READY_TIMEOUT_S = 2.0


@router.get("/v1/health", response_model=Health)
async def health() -> Health:
    """The process is up (does not touch the database)."""
    return Health(status="ok")


@router.get(
    "/v1/ready",
    response_model=Ready,
    responses={503: {"model": Problem, "description": "Database unavailable; see Retry-After."}},
)
def ready(request: Request) -> Ready | JSONResponse:
    """Ready to serve: the database answers."""
    try:
        with request.app.state.pool.connection(timeout=READY_TIMEOUT_S) as conn:
            conn.execute("select 1")
    except Exception as exc:  # noqa: BLE001 - any failure here means "not ready"
        return unavailable(f"database unavailable: {type(exc).__name__}")
    return Ready(status="ready", database="ok")


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request) -> Response:
    """Prometheus metrics of this API process."""
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
