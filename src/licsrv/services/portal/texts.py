"""The portal's words in English, German and Chinese, chosen by Accept-Language; the product's name, never
the server's."""

from __future__ import annotations

LANGUAGES = ("en", "de", "zh")

MAILS: dict[str, dict[str, tuple[str, str]]] = {
    "verify": {
        "en": (
            "{product}: your confirmation code",
            "Your code to confirm your email address for {product} is:\n\n    {code}\n\n"
            "It is valid for 24 hours. If you did not register, ignore this message.\n",
        ),
        "de": (
            "{product}: Ihr Bestätigungscode",
            "Ihr Code zur Bestätigung Ihrer E-Mail-Adresse für {product} lautet:\n\n    {code}\n\n"
            "Er gilt 24 Stunden. Wenn Sie sich nicht registriert haben, ignorieren Sie diese Nachricht.\n",
        ),
        "zh": (
            "{product}：您的验证码",
            "您在 {product} 确认邮箱地址的验证码是：\n\n    {code}\n\n"
            "24 小时内有效。如果您没有注册，请忽略此邮件。\n",
        ),
    },
    "reset": {
        "en": (
            "{product}: reset your password",
            "Someone asked to reset the password of your {product} account.\n\n"
            "Open this link within {minutes} minutes to choose a new one:\n{link}\n\n"
            "or enter this token: {token}\n\nIf it was not you, ignore this message.\n",
        ),
        "de": (
            "{product}: Passwort zurücksetzen",
            "Jemand möchte das Passwort Ihres {product}-Kontos zurücksetzen.\n\n"
            "Öffnen Sie diesen Link innerhalb von {minutes} Minuten, um ein neues zu wählen:\n{link}\n\n"
            "oder geben Sie dieses Token ein: {token}\n\n"
            "Waren Sie es nicht, ignorieren Sie diese Nachricht.\n",
        ),
        "zh": (
            "{product}：重置密码",
            "有人请求重置您的 {product} 账户密码。\n\n请在 {minutes} 分钟内打开此链接设置新密码：\n{link}\n\n"
            "或输入此令牌：{token}\n\n如果不是您本人操作，请忽略此邮件。\n",
        ),
    },
}


def pick_language(accept_language: str | None) -> str:
    """The first of en/de/zh the browser prefers (q-values honoured), English otherwise."""
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            choices.append((-quality, position, primary))
    return min(choices)[2] if choices else "en"


def mail_text(lang: str, kind: str, **values: object) -> tuple[str, str]:
    subject, body = MAILS[kind].get(lang, MAILS[kind]["en"])
    return subject.format(**values), body.format(**values)
