"""Swagger UI and ReDoc served by the API itself, with no request to the internet.

FastAPI's default ``/docs`` loads Swagger UI from a CDN (and ReDoc also Google Fonts), so it is a blank
page on a plant network without internet. The JavaScript and CSS come from the ``fastapi-offline``
package (which bundles Swagger UI and ReDoc) and are served from ``/static-docs``; the pages are plain
Starlette routes like FastAPI's own, so they carry no API-key dependency (the OpenAPI document and its
viewers hold no data; ``api.auth.DOC_PATHS``).
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

STATIC_URL = "/static-docs"
DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
# validatorUrl None: Swagger UI would otherwise ask validator.swagger.io about the schema
SWAGGER_PARAMETERS = {"validatorUrl": None}
# ReDoc's side menu shows its vendor's logo from a CDN; served with that one URL pointed at our favicon
REDOC_LOGO_URL = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def install(app: FastAPI) -> None:
    """Serve ``/docs``, ``/redoc`` and their assets from the bundled package (the app has docs off)."""
    static = files("fastapi_offline") / "static"
    redoc_js = (static / "redoc.standalone.js").read_text(encoding="utf-8")
    redoc_js = redoc_js.replace(REDOC_LOGO_URL, f"{STATIC_URL}/favicon.png")
    title = app.title

    def _root(request: Request) -> str:
        return str(request.scope.get("root_path", ""))

    async def swagger(request: Request) -> HTMLResponse:
        root = _root(request)
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{title} - Swagger UI",
            oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT_URL}",
            swagger_js_url=f"{root}{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            swagger_ui_parameters=SWAGGER_PARAMETERS,
        )

    async def redoc_script(request: Request) -> Response:
        return Response(redoc_js, media_type="text/javascript")

    async def redirect(request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc(request: Request) -> HTMLResponse:
        root = _root(request)
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{title} - ReDoc",
            redoc_js_url=f"{root}{STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            with_google_fonts=False,
        )

    # the rewritten script first: routes match in order, before the mount serves the original
    app.add_route(f"{STATIC_URL}/redoc.standalone.js", redoc_script, include_in_schema=False)
    app.mount(STATIC_URL, StaticFiles(directory=str(static)), name="static-docs")
    app.add_route(DOCS_URL, swagger, include_in_schema=False)
    app.add_route(OAUTH2_REDIRECT_URL, redirect, include_in_schema=False)
    app.add_route(REDOC_URL, redoc, include_in_schema=False)
