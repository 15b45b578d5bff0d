"""Double opt-in through a real SMTP server (aiosmtpd): the code arrives by mail, off the request path,
and mail that could not be sent is sent again later."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

from licsrv.app import create_app
from licsrv.services.mail import send_due
from licsrv.state import DEPS
from portal_helpers import PASSWORD, call, new_email, register, set_portal

from factories import make_license, make_product


class Inbox:
    """What the SMTP server (in its own thread) received; the test's loop is told of each arrival."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.messages: list[EmailMessage] = []
        self.arrived = asyncio.Event()

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        self.loop.call_soon_threadsafe(self.arrived.set)
        return "250 OK"

    async def wait(self, to: str, count: int = 1) -> list[EmailMessage]:
        """The messages to `to`, once `count` arrived (the outbox may hold other tests' mail too)."""
        async with asyncio.timeout(10):
            while True:
                self.arrived.clear()
                mine = [m for m in self.messages if m["To"] == to]
                if len(mine) >= count:
                    return mine
                await self.arrived.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def smtp():
    inbox = Inbox(asyncio.get_running_loop())
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


async def test_opt_in_code_arrives_by_smtp_in_german_and_verifies(
    aiohttp_client, settings, conn, queries, smtp
):
    inbox, port = smtp
    app = create_app(replace(settings, smtp_url=f"smtp://127.0.0.1:{port}", mail_poll_interval=0.05))
    client = await aiohttp_client(app)
    product = await make_product(conn, app)
    headers = {"X-API-Key": product["api_key"]}
    await set_portal(conn, product, double_opt_in=True)
    lic = await make_license(conn, queries, product)
    email = new_email()
    status, body = await call(
        client,
        "POST",
        "/register",
        headers,
        {"email": email, "password": PASSWORD, "ticket": lic["key"]},
        **{"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"},
    )
    assert (status, body["data"]["verification_required"]) == (201, True)
    auth = {"Authorization": f"Bearer {body['data']['session_token']}"}
    [message] = await inbox.wait(email)
    assert message["To"] == email and "Bestätigungscode" in message["Subject"]
    text = message.get_content()
    code = next(word for word in text.split() if word.isdigit() and len(word) == 6)
    # the code was mailed, never answered: the registration's answer holds no code
    assert code not in str(body)

    status, answer = await call(client, "POST", "/verify", headers, {"code": code}, **auth)
    assert (status, answer["data"]) == (200, {"verified": True, "product": product["slug"]})
    assert (await call(client, "GET", "/licenses", headers, **auth))[0] == 200
    status, answer = await call(client, "POST", "/verify", headers, {"code": code}, **auth)
    assert status == 200  # verified stays verified; the code itself is used up
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM portal_tokens t JOIN portal_accounts a ON a.id = t.account_id"
            " WHERE a.email = $1 AND t.used_at IS NULL",
            email,
        )
        == 0
    )
    # marked sent once the server took it (checked after a few round trips, so the marking has landed)
    assert await conn.fetchval("SELECT sent_at IS NOT NULL FROM mail_outbox WHERE to_addr = $1", email)


async def test_a_new_code_replaces_the_old_and_guesses_run_out(aiohttp_client, settings, conn, queries, smtp):
    inbox, port = smtp
    app = create_app(replace(settings, smtp_url=f"smtp://127.0.0.1:{port}", mail_poll_interval=0.05))
    client = await aiohttp_client(app)
    product = await make_product(conn, app)
    headers = {"X-API-Key": product["api_key"]}
    await set_portal(conn, product, double_opt_in=True)
    lic = await make_license(conn, queries, product)
    email = new_email()
    _, body = await register(client, headers, lic["key"], email)
    auth = {"Authorization": f"Bearer {body['data']['session_token']}"}
    first = (await inbox.wait(email))[0].get_content()
    first_code = next(w for w in first.split() if w.isdigit() and len(w) == 6)
    assert (await call(client, "POST", "/verify/resend", headers, **auth))[1]["data"]["sent"] is True
    second = (await inbox.wait(email, 2))[1].get_content()
    code = next(w for w in second.split() if w.isdigit() and len(w) == 6)
    if first_code != code:
        status, answer = await call(client, "POST", "/verify", headers, {"code": first_code}, **auth)
        assert (status, answer["error"]["code"]) == (400, "CODE_INVALID")
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        await call(client, "POST", "/verify", headers, {"code": wrong}, **auth)
    status, answer = await call(client, "POST", "/verify", headers, {"code": code}, **auth)
    assert (status, answer["error"]["code"]) == (400, "CODE_INVALID")  # five wrong guesses used it up


async def test_mail_the_server_refused_is_sent_again_later(app, client, conn, smtp):
    inbox, port = smtp
    deps = replace(
        app[DEPS], settings=replace(app[DEPS].settings, smtp_url=f"smtp://127.0.0.1:{free_port()}")
    )
    mail_id = await conn.fetchval(
        "INSERT INTO mail_outbox (to_addr, subject, body)"
        " VALUES ('k@example.com', 'Hallo', 'Text') RETURNING id"
    )
    await conn.execute(
        "UPDATE mail_outbox SET next_attempt_at = now() + interval '1 hour' WHERE id <> $1", mail_id
    )
    assert await send_due(deps) == 1  # nobody listens on that port
    row = await conn.fetchrow("SELECT * FROM mail_outbox WHERE id = $1", mail_id)
    assert row["sent_at"] is None and row["attempts"] == 1 and row["last_error"]
    assert row["next_attempt_at"] > row["created_at"]
    assert await send_due(deps) == 0  # backing off
    await conn.execute("UPDATE mail_outbox SET next_attempt_at = now() WHERE id = $1", mail_id)
    deps = replace(deps, settings=replace(deps.settings, smtp_url=f"smtp://127.0.0.1:{port}"))
    assert await send_due(deps) == 1
    [message] = await inbox.wait("k@example.com")
    assert message["Subject"] == "Hallo"
    assert (
        await conn.fetchval("SELECT attempts FROM mail_outbox WHERE id = $1 AND sent_at IS NOT NULL", mail_id)
        == 2
    )


async def test_the_sender_survives_losing_postgresql_and_catches_up(settings, conn, queries, smtp):
    """Supervision: while its pool is gone every pass fails (logged, retried with backoff); once PostgreSQL is
    back the queued mail goes out without anyone restarting the task."""
    from licsrv.db import Database, connect_pool
    from licsrv.services.mail import mail_sender

    inbox, port = smtp
    await conn.execute(
        "UPDATE mail_outbox SET next_attempt_at = now() + interval '1 hour' WHERE sent_at IS NULL"
    )
    await conn.execute(
        "INSERT INTO mail_outbox (to_addr, subject, body) VALUES ('back@example.com', 'Zurück', 'x')"
    )
    broken = await connect_pool(settings.database_url, min_size=1, max_size=1)
    await broken.close()
    db = Database(broken, queries, acquire_timeout=0.2)
    deps = replace(
        _deps_for(settings, db),
        settings=replace(settings, smtp_url=f"smtp://127.0.0.1:{port}", mail_poll_interval=0.05),
    )
    async with mail_sender(deps) as task:
        await asyncio.sleep(0)  # let it fail at least once against the closed pool
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await inbox.wait("back@example.com")
        db.pool = await connect_pool(settings.database_url, min_size=1, max_size=2)
        try:
            [message] = await inbox.wait("back@example.com")
            assert message["Subject"] == "Zurück" and not task.done()
        finally:
            fresh = db.pool
    assert task.done()  # and it stopped when asked
    await fresh.close()


def _deps_for(settings, db):
    from licsrv.deps import Deps

    return Deps(settings=settings, db=db, redis=None, live=None, products=None, crypto=None)
