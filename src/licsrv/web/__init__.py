"""The admin UI `/admin`: server-rendered pages behind a login, every form CSRF-protected."""

from __future__ import annotations

from aiohttp import web

from licsrv.no_store import no_store
from licsrv.web import (
    auth,
    cards,
    content_key,
    customers,
    dashboard,
    licenses,
    plans,
    products,
    records,
    scope,
    sessions,
    settings,
    webhooks,
)
from licsrv.web.csp import csp_middleware
from licsrv.web.session import admin_auth_middleware


def create_admin_web_app() -> web.Application:
    admin = no_store(web.Application(middlewares=[csp_middleware, admin_auth_middleware]))
    admin.add_routes(
        [
            web.get("/login", auth.login_form),
            web.post("/login", auth.login),
            web.post("/logout", auth.logout),
            web.get("/password", auth.password_form),
            web.post("/password", auth.change_password),
            web.get("/", dashboard.dashboard),
            web.get("/api/summary", dashboard.summary),
            web.get("/licenses", licenses.license_list),
            web.post("/licenses", licenses.license_create),
            web.get(r"/licenses/{id:\d{1,18}}", licenses.license_detail),
            web.post(r"/licenses/{id:\d{1,18}}/{action:[a-z-]{1,20}}", licenses.license_action),
            web.get("/cards", cards.batch_list),
            web.post("/cards", cards.batch_create),
            web.get(r"/cards/{id:\d{1,18}}.csv", cards.batch_csv),
            web.post(r"/cards/{id:\d{1,18}}/void", cards.batch_void),
            web.get("/sessions", sessions.live_list),
            web.post(r"/sessions/{id:[A-Za-z0-9_-]{16}}/terminate", sessions.terminate),
            web.get("/history", sessions.history),
            web.get("/products", products.product_list),
            web.post("/products", products.product_create),
            web.post(r"/products/{id:\d{1,18}}/rename", products.product_rename),
            web.post(r"/products/{id:\d{1,18}}/{action:archive|unarchive}", products.product_archive),
            web.get("/settings", products.settings_of_scope),
            web.post("/scope", scope.set_scope),
            web.get("/plans", plans.plan_list),
            web.post("/plans", plans.plan_create),
            web.post(r"/plans/{id:\d{1,18}}", plans.plan_update),
            web.post(r"/plans/{id:\d{1,18}}/archive", plans.plan_archive),
            web.get(r"/products/{id:\d{1,18}}", settings.product_page),
            web.post(r"/products/{id:\d{1,18}}", settings.product_update),
            web.post(r"/products/{id:\d{1,18}}/rotate", settings.product_rotate),
            web.post(r"/products/{id:\d{1,18}}/retire-previous-key", settings.product_retire_previous_key),
            web.get("/tokens", settings.token_list),
            web.post("/tokens", settings.token_create),
            web.post(r"/tokens/{id:\d{1,18}}/revoke", settings.token_revoke),
            web.get("/admins", settings.admin_list),
            web.post("/admins", settings.admin_create),
            web.post(r"/admins/{id:\d{1,18}}", settings.admin_update),
            web.get("/audit", records.audit),
            web.get("/security", records.security),
            web.get("/customers", customers.customer_list),
            web.get(r"/customers/{id:\d{1,18}}", customers.customer_detail),
            web.post(r"/customers/{id:\d{1,18}}/{action:[a-z]{1,20}}", customers.customer_action),
            web.get("/outbox", customers.outbox),
        ]
    )
    admin.add_routes(webhooks.routes())
    admin.add_routes(content_key.routes())
    admin.add_routes(cards.routes())
    return admin
